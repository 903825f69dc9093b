/**
 * Trips to the origin: one request counted, and a download of a body into
 * an {@link Assembly}, its pieces hashed as they complete, resumed with
 * `Range` (guarded by `If-Range`) after a failure or a takeover: each run of
 * missing pieces asked for on its own, so that the pieces held are not sent
 * again.
 *
 * @module
 */
import { ConflictError, StoreUnavailableError } from "../../core/errors.ts";
import { sleep, type TokenBucket } from "../../transport/rate_limit.ts";
import type { Assembly } from "./assembly.ts";
import { rangeValidator } from "./freshness.ts";
import type { OriginCounts } from "./origin_counts.ts";

/** What every request of one read-through sends, and where it counts. */
export interface OriginTrip {
  /** The origin URL. */
  readonly url: string;
  /** The request headers for the origin (see `requestHeaders`). */
  readonly headers: Headers;
  /** Where trips, bytes, failures and resumes are counted. */
  readonly counts: OriginCounts;
  /** Ends the trip. */
  readonly signal: AbortSignal;
  /** The daemon's download rate, which bytes from the origin and from other daemons take. */
  readonly rate?: TokenBucket | undefined;
}

/**
 * The origin answered a resume's `If-Range` with the whole body of another
 * version: what was held is of the old one. Its `response` (body unread) is
 * the new version's first answer, for a download that starts over with it.
 */
export class ChangedBody extends ConflictError {
  /** The origin's answer: a 200 with the new version's whole body, unread. */
  readonly response: Response;

  /**
   * @param url The origin URL, as errors show it.
   * @param response The answer with the new version.
   */
  constructor(url: string, response: Response) {
    super(`Cannot fetch ${shown(url)}: the origin's content changed during the download`);
    this.response = response;
  }
}

/** Attempts at one download: the first and the resumes after failures. */
export const MAX_ATTEMPTS = 4;
/** Milliseconds before the first resume; doubled for each next one. */
const RETRY_MS = 100;

/**
 * Sends one request to the origin, counted as a trip (and as a failure when
 * the origin does not answer). Its headers are never logged.
 *
 * @throws {StoreUnavailableError} When the origin does not answer.
 */
export async function askOrigin(
  trip: OriginTrip,
  extra: Record<string, string> = {},
): Promise<Response> {
  trip.counts.origin_trips_total++;
  const headers = new Headers(trip.headers);
  for (const [name, value] of Object.entries(extra)) headers.set(name, value);
  try {
    return await fetch(trip.url, { headers, signal: trip.signal });
  } catch (error) {
    trip.counts.origin_failures_total++;
    if (trip.signal.aborted) throw trip.signal.reason;
    throw new StoreUnavailableError(
      `Cannot fetch ${shown(trip.url)}: the origin did not answer: ${(error as Error).message}`,
    );
  }
}

/**
 * Downloads the missing pieces of `assembly` from piece `from` on from the
 * origin: from `first` (a 200 response to the plain request) when given,
 * else each run of missing pieces with `Range` and `If-Range: validator`. A
 * failure (cut off, a wrong status or length) is counted and resumed from
 * the first missing piece, up to {@link MAX_ATTEMPTS} failures in a row.
 *
 * @throws {ChangedBody} When a resume was answered with another version's whole body.
 * @throws {ConflictError} When the origin's content changed meanwhile (no validator).
 * @throws {StoreUnavailableError} When every attempt failed.
 */
export async function download(
  assembly: Assembly,
  first: Response | undefined,
  trip: OriginTrip,
  validator: string | undefined,
  from = 0,
): Promise<void> {
  let response = first;
  let failure = "";
  for (let failures = 0; assembly.firstMissing(from) < assembly.count;) {
    if (failures >= MAX_ATTEMPTS) {
      throw new StoreUnavailableError(
        `Cannot fetch ${shown(trip.url)}: ${MAX_ATTEMPTS} attempts failed (last: ${failure})`,
      );
    }
    if (failures > 0) await sleep(RETRY_MS * 2 ** (failures - 1), trip.signal);
    let changed = false;
    try {
      if (response === undefined) {
        const missing = assembly.firstMissing(from);
        const { start } = assembly.span(missing);
        const { end } = assembly.span(assembly.firstHeld(missing) - 1);
        trip.counts.origin_resumes_total++;
        // Without a validator a range could splice two versions: the whole body
        // again, the pieces held compared with it.
        response = await askOrigin(
          trip,
          validator === undefined ? {} : {
            range: `bytes=${start}-${end === assembly.size ? "" : end - 1}`,
            "if-range": validator,
          },
        );
      }
      const [at, end] = spanOf(response, assembly, validator, trip);
      await pump(response, at, end, assembly, trip, validator === undefined);
      failures = 0;
    } catch (error) {
      changed = error instanceof ChangedBody;
      if (!changed) await response?.body?.cancel().catch(() => {});
      if (error instanceof ConflictError || trip.signal.aborted) throw error;
      failure = (error as Error).message;
      failures++;
    } finally {
      response = undefined;
    }
  }
}

/**
 * Bytes `[start, end)` of the object that the body of `response` holds:
 * all for a 200 of the same size and validator, the range for a 206.
 *
 * @throws {ChangedBody} For a 200 of another version (or size).
 */
function spanOf(
  response: Response,
  assembly: Assembly,
  validator: string | undefined,
  trip: OriginTrip,
): [number, number] {
  const fail = (message: string) => {
    trip.counts.origin_failures_total++;
    return new StoreUnavailableError(`Cannot fetch ${shown(trip.url)}: ${message}`);
  };
  if (response.status === 200) {
    const length = Number(response.headers.get("content-length"));
    if (
      (validator !== undefined && rangeValidator(response.headers) !== validator) ||
      length !== assembly.size
    ) throw new ChangedBody(trip.url, response);
    return [0, assembly.size];
  }
  if (response.status === 206) {
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
    const [start, last] = [Number(range?.[1]), Number(range?.[2])];
    if (
      range === null || Number(range[3]) !== assembly.size || start % assembly.pieceSize !== 0 ||
      (last !== assembly.size - 1 && (last + 1) % assembly.pieceSize !== 0) || last < start
    ) {
      throw fail(
        `the origin answered a range request with ${response.headers.get("content-range")}`,
      );
    }
    return [start, last + 1];
  }
  throw fail(`the origin answered ${response.status} during the download`);
}

/**
 * Writes the body into the view from byte `at` to `stop`, hashing each
 * piece it completes; with `compare`, the bytes of pieces held must be the same.
 */
async function pump(
  response: Response,
  at: number,
  stop: number,
  assembly: Assembly,
  trip: OriginTrip,
  compare: boolean,
): Promise<void> {
  if (response.body === null) {
    if (stop === at) return;
    throw new StoreUnavailableError("the origin sent no body");
  }
  const { view, pieceSize } = assembly;
  const hashes: Promise<void>[] = [];
  let position = at;
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const end = position + value.length;
      if (end > stop) {
        trip.counts.origin_failures_total++;
        throw new StoreUnavailableError(`the origin sent more than its ${stop - at} bytes`);
      }
      trip.counts.origin_bytes_total += value.length;
      await trip.rate?.take(value.length, trip.signal);
      // Verified pieces keep their bytes: other daemons may be reading them.
      for (let piece = Math.floor(position / pieceSize); piece * pieceSize < end; piece++) {
        const span = assembly.span(piece);
        const from = Math.max(span.start, position);
        const to = Math.min(span.end, end);
        const bytes = value.subarray(from - position, to - position);
        if (!assembly.has(piece)) view.set(bytes, from);
        else if (compare && !same(view, from, bytes)) {
          throw new ConflictError(
            `Cannot fetch ${shown(trip.url)}: the origin's content changed during the download`,
          );
        }
        if (to === span.end && !assembly.has(piece)) hashes.push(assembly.hashed(piece));
      }
      position = end;
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    await Promise.allSettled(hashes);
    if (
      error instanceof StoreUnavailableError || error instanceof ConflictError ||
      trip.signal.aborted
    ) throw error;
    trip.counts.origin_failures_total++;
    throw new StoreUnavailableError(`cut off: ${(error as Error).message}`);
  }
  await Promise.all(hashes);
  if (position !== stop) {
    trip.counts.origin_failures_total++;
    throw new StoreUnavailableError(`the origin sent ${position - at} of ${stop - at} bytes`);
  }
}

/** A whole body kept for its caller alone (not shared), up to `limit` bytes, counted. */
export async function gatherBody(
  trip: OriginTrip,
  response: Response,
  limit: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body ?? []) {
    total += chunk.length;
    trip.counts.origin_bytes_total += chunk.length;
    if (total > limit) {
      await response.body?.cancel().catch(() => {});
      throw new StoreUnavailableError(
        `Cannot fetch ${shown(trip.url)}: a body of no stated length is over ${limit} bytes`,
      );
    }
    chunks.push(chunk);
  }
  const body = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.length;
  }
  return body;
}

/** Whether `view[at..]` holds `bytes`. */
function same(view: Uint8Array, at: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (view[at + i] !== bytes[i]) return false;
  return true;
}

/** A URL as logs and errors show it: without user and password. */
export function shown(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    return parsed.href;
  } catch {
    return "the URL";
  }
}
