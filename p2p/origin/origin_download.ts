/**
 * Trips to the origin: one request counted, and a download of a body into
 * an {@link Assembly}, its pieces hashed as they complete, resumed with
 * `Range` (guarded by `If-Range`) after a failure or a takeover.
 *
 * @module
 */
import { ConflictError, StoreUnavailableError } from "../../core/errors.ts";
import { sleep, type TokenBucket } from "../../transport/rate_limit.ts";
import type { Assembly } from "./assembly.ts";
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
 * else from the first missing piece with `Range` and `If-Range: validator`. A failure (cut
 * off, a wrong status or length) is counted and resumed from the first
 * missing piece, up to {@link MAX_ATTEMPTS} attempts in all.
 *
 * @throws {ConflictError} When the origin's content changed meanwhile.
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
  for (let attempt = 0; assembly.firstMissing(from) < assembly.count; attempt++) {
    if (attempt >= MAX_ATTEMPTS) {
      throw new StoreUnavailableError(
        `Cannot fetch ${shown(trip.url)}: ${MAX_ATTEMPTS} attempts failed (last: ${failure})`,
      );
    }
    if (attempt > 0) await sleep(RETRY_MS * 2 ** (attempt - 1), trip.signal);
    try {
      if (response === undefined) {
        const { start } = assembly.span(assembly.firstMissing(from));
        trip.counts.origin_resumes_total++;
        // Without a validator a range could splice two versions: the whole body
        // again, the pieces held compared with it.
        response = await askOrigin(
          trip,
          validator === undefined ? {} : { range: `bytes=${start}-`, "if-range": validator },
        );
      }
      const at = startOf(response, assembly, validator, trip);
      await pump(response, at, assembly, trip, validator === undefined);
    } catch (error) {
      await response?.body?.cancel().catch(() => {});
      if (error instanceof ConflictError || trip.signal.aborted) throw error;
      failure = (error as Error).message;
    } finally {
      response = undefined;
    }
  }
}

/**
 * Where the body of `response` starts in the object: 0 for a 200 of the
 * same size and validator, the range's start for a 206.
 */
function startOf(
  response: Response,
  assembly: Assembly,
  validator: string | undefined,
  trip: OriginTrip,
): number {
  const fail = (message: string) => {
    trip.counts.origin_failures_total++;
    return new StoreUnavailableError(`Cannot fetch ${shown(trip.url)}: ${message}`);
  };
  if (response.status === 200) {
    const now = response.headers.get("etag") ?? response.headers.get("last-modified") ??
      undefined;
    const length = Number(response.headers.get("content-length"));
    if ((validator !== undefined && now !== validator) || length !== assembly.size) {
      throw new ConflictError(
        `Cannot fetch ${shown(trip.url)}: the origin's content changed during the download`,
      );
    }
    return 0;
  }
  if (response.status === 206) {
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
    if (
      range === null || Number(range[3]) !== assembly.size ||
      Number(range[2]) !== assembly.size - 1 || Number(range[1]) % assembly.pieceSize !== 0
    ) {
      throw fail(
        `the origin answered a range request with ${response.headers.get("content-range")}`,
      );
    }
    return Number(range[1]);
  }
  throw fail(`the origin answered ${response.status} during the download`);
}

/**
 * Writes the body into the view from byte `at`, hashing each piece it
 * completes; with `compare`, the bytes of pieces held must be the same.
 */
async function pump(
  response: Response,
  at: number,
  assembly: Assembly,
  trip: OriginTrip,
  compare: boolean,
): Promise<void> {
  if (response.body === null) {
    if (assembly.size === at) return;
    throw new StoreUnavailableError("the origin sent no body");
  }
  const { view, size, pieceSize } = assembly;
  const hashes: Promise<void>[] = [];
  let position = at;
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const end = position + value.length;
      if (end > size) {
        trip.counts.origin_failures_total++;
        throw new StoreUnavailableError(`the origin sent more than its ${size} bytes`);
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
  if (position !== size) {
    trip.counts.origin_failures_total++;
    throw new StoreUnavailableError(`the origin sent ${position - at} of ${size - at} bytes`);
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
