/**
 * A run of consecutive pieces of an object asked of one source in one HTTP
 * Range request, their bytes written as they land into a target (the
 * object's {@link Landing}, or a scratch piece for an endgame duplicate). Each
 * piece is handed on as soon as its last byte is in, and the request reads
 * on: checking a piece against its digest ({@link checkPiece}) never holds
 * up the bytes of the next. Over a native connection the bytes go from the
 * socket into the target on another thread, hashed as they land, and each
 * piece is handed on with its digest; with `fetch`, each chunk of the body
 * is copied in. Both check the answer and fault the source alike.
 *
 * @module
 */
import type { ContentRecord, Holder } from "../directory.ts";
import { digestLike, newPieceAlgorithm, pieceAlgorithm } from "../piece_digest.ts";
import { PackiceError } from "../../core/errors.ts";
import { SourceError, type SourceFault } from "../source_error.ts";
import { pieceDeadline, type PieceTimeout } from "./piece_timeout.ts";
import {
  piecePortAnswered,
  piecePortProven,
  piecePortUnreachable,
  piecePortUrl,
  PROBATION_MS,
} from "./piece_ports.ts";
import { type Endpoint, RangeClient } from "./range_client.ts";
import type { Landing } from "./landing.ts";
import {
  ConnectionError,
  HASH_END,
  hashStart,
  type RangeConnection,
  REQUEST_MAX,
} from "./range_connection.ts";
import { parseHead } from "./response_head.ts";

/** The most bytes taken from a response body at once, with `fetch`. */
const READ_BYTES = 1 << 20;

/**
 * The most bytes received in one native call: the rate limit is asked
 * before each (and a cancelled request has counted at most one step more
 * than it received); one call of the thread pool per MiB costs little.
 */
const STEP_BYTES = 1 << 20;

/** Targets in buffers shorter than this are received through a bounce buffer. */
const OFF_HEAP_MIN = 64 << 10;

/** What {@link requestPieces} needs. */
export interface PieceRequest {
  readonly record: ContentRecord;
  /** The first piece of the run. */
  readonly piece: number;
  /** Pieces in the run, 1 or more. */
  readonly count: number;
  readonly holder: Holder;
  /** Where the bytes go: memory, or the object's landing; index `at` gets the run's first byte. */
  readonly target: Uint8Array | Landing;
  /** The index in `target` of the run's first byte. */
  readonly at: number;
  /** A {@link RangeClient} receives natively where it can; a plain client always uses `fetch`. */
  readonly client: RangeClient | Deno.HttpClient;
  readonly token?: string | undefined;
  /** The run's deadline: `base`, plus `perMiB` for each MiB of all its pieces. */
  readonly timeout?: PieceTimeout | undefined;
  /** Ends the request without a fault of the source (a cancelled transfer or endgame loser). */
  readonly signal: AbortSignal;
  /**
   * Awaited before each chunk is written, with its length and the piece its
   * first byte belongs to (a rate limit waits here); false stops the request
   * quietly.
   */
  readonly onChunk?: (bytes: number, piece: number) => Promise<boolean> | boolean;
  /** Called with the length of each chunk once it has landed. */
  readonly received?: ((bytes: number) => void) | undefined;
  /**
   * The most bytes received in one native call (`onChunk` is asked before
   * each). Default 1 MiB, a step a rate limit can pace; with no limit to
   * ask, a whole piece is one call: fewer round trips through the thread pool.
   */
  readonly step?: number | undefined;
  /** The source answered with the range: the pieces are on their way. */
  readonly accepted?: () => void;
  /**
   * The holder's piece port did not answer (see `piece_ports.ts`): the run
   * is asked at its address, and so are its next ones for a while.
   */
  readonly piecePortUnreachable?: ((reason: string) => void) | undefined;
  /**
   * A piece's bytes are all in, at `[from, to)` of the target; called in order. With
   * `digest`, their digest (as the record names it) taken as they landed: no need to read them again.
   */
  readonly landed: (piece: number, from: number, to: number, digest?: string) => void;
}

/**
 * Fetches a run of pieces, handing each on as it lands: over a native
 * connection where the client has one for the holder, else with `fetch`.
 *
 * @returns How many pieces landed: all of them, or fewer when stopped by `signal` or `onChunk`.
 * @throws {SourceError} When the source fails: the pieces not landed are to be asked elsewhere.
 */
export async function requestPieces(request: PieceRequest): Promise<number> {
  const { record, piece, count, holder } = request;
  const what = count === 1 ? `piece ${piece}` : `pieces ${piece}-${piece + count - 1}`;
  const target = request.target;
  const memory = target instanceof Uint8Array
    ? target
    : target.fd === undefined
    ? target.view
    : undefined;
  const run: Run = {
    memory,
    write: memory === undefined
      ? (at, bytes) => (target as Landing).write(at, bytes)
      : (at, bytes) => memory.set(bytes, at),
    start: piece * record.pieceSize,
    end: Math.min(record.size, (piece + count) * record.pieceSize),
    fault: (kind, message, cause) =>
      new SourceError(kind, holder, `${what} of ${record.id}: ${message}`, { cause }),
  };
  let url: URL;
  try {
    url = new URL(`${holder.address}/v1/objects/${encodeURIComponent(record.id)}?local=1`);
  } catch (cause) {
    // A forged or broken address in the directory: that source's fault, as fetch would say.
    throw run.fault("unreachable", (cause as Error).message, cause);
  }
  return await atPiecePort(
    holder,
    url,
    (at, piecePort) => requestAt(request, at, run, piecePort),
    request.piecePortUnreachable,
  );
}

/**
 * Asks `ask` at the holder's piece listener first, where it has one (see
 * `piece_ports.ts`), else at `url`, a request to the holder's address; and
 * at `url` when `ask` throws {@link PortUnreachable} at the port, which is
 * then left alone for a while (`unreachable` is told why).
 */
export async function atPiecePort<T>(
  holder: Holder,
  url: URL,
  ask: (at: URL, piecePort?: PiecePortTrial) => Promise<T>,
  unreachable?: (reason: string) => void,
): Promise<T> {
  const port = piecePortUrl(holder, url);
  if (port !== undefined) {
    const piecePort = {
      probation: !piecePortProven(port),
      answered: () => piecePortAnswered(port),
    };
    try {
      return await ask(port, piecePort);
    } catch (error) {
      if (!(error instanceof PortUnreachable)) throw error;
      piecePortUnreachable(port);
      unreachable?.(error.message);
    }
  }
  return await ask(url);
}

/**
 * The answer's head of a `fetch` of `url` within `deadline`. At a piece
 * port (`piecePort`), one that does not answer (refused, reset, silent on
 * probation for {@link PROBATION_MS}, or till the deadline) throws
 * {@link PortUnreachable}; other failures, and any once `init.signal`
 * aborted, are thrown as `fetch` threw them.
 */
export async function fetchHead(
  url: URL,
  init: RequestInit & { readonly signal: AbortSignal; readonly client?: Deno.HttpClient },
  deadline: AbortSignal,
  piecePort?: PiecePortTrial,
): Promise<Response> {
  const probation = new AbortController();
  const timer = piecePort?.probation === true
    ? setTimeout(() => probation.abort(), PROBATION_MS)
    : undefined;
  let response: Response;
  try {
    response = await fetch(url, {
      ...init,
      signal: AbortSignal.any([init.signal, deadline, probation.signal]),
    });
  } catch (cause) {
    if (
      !init.signal.aborted && piecePort !== undefined &&
      (!deadline.aborted || probation.signal.aborted)
    ) {
      throw new PortUnreachable((cause as Error).message, { cause });
    }
    throw cause;
  } finally {
    clearTimeout(timer);
  }
  piecePort?.answered();
  return response;
}

/**
 * The run asked at `url`: over a native connection where the client has one
 * for it, else with `fetch`; at a piece port (`piecePort`), one that does not
 * answer throws {@link PortUnreachable}.
 */
async function requestAt(
  request: PieceRequest,
  url: URL,
  run: Run,
  piecePort?: PiecePortTrial,
): Promise<number> {
  const client = request.client;
  const endpoint = client instanceof RangeClient ? client.endpoint(url) : undefined;
  const message = endpoint === undefined ? undefined : requestText(request, url, endpoint, run);
  if (endpoint === undefined || message === undefined) {
    const http = client instanceof RangeClient ? client.http : client;
    return await fetchPieces(request, url, http, run, piecePort);
  }
  return await receivePieces(request, client as RangeClient, endpoint, message, run, piecePort);
}

/** A request at a holder's piece port: whether it is on probation, and what to tell once it answered. */
export interface PiecePortTrial {
  readonly probation: boolean;
  readonly answered: () => void;
}

/**
 * A holder's piece port did not answer (refused, reset, or silent on
 * probation) before its answer's head: the run is asked at its address.
 */
export class PortUnreachable extends Error {}

/** The bytes a request asks for, and how a fault of it is told. */
interface Run {
  /** The target's memory, when bytes are received into memory; undefined for a memfd. */
  readonly memory: Uint8Array | undefined;
  /** Writes bytes at an index of the target. */
  readonly write: (at: number, bytes: Uint8Array) => void;
  /** The run's first byte in the object. */
  readonly start: number;
  /** The byte after its last. */
  readonly end: number;
  readonly fault: (kind: SourceFault, message: string, cause?: unknown) => SourceError;
}

/** The source's answer, checked: its fault when it is not the range asked. */
function checkAnswer(
  status: number,
  contentRange: string | null,
  record: ContentRecord,
  run: Run,
): SourceError | undefined {
  if (status !== 206) {
    const kind = status === 404 ? "missing" : status === 503 ? "busy" : "status";
    return run.fault(kind, `answered ${status} to a range request`);
  }
  const asked = `bytes ${run.start}-${run.end - 1}/${record.size}`;
  if (contentRange !== asked) {
    return run.fault("length", `content range ${contentRange}, not ${asked}`);
  }
  return undefined;
}

/** A run of pieces with `fetch`: each chunk of the body copied into the target. */
async function fetchPieces(
  request: PieceRequest,
  url: URL,
  client: Deno.HttpClient,
  run: Run,
  piecePort?: PiecePortTrial,
): Promise<number> {
  const { record, piece, count, signal } = request;
  const { pieceSize } = record;
  const { start, end, fault } = run;
  const deadline = AbortSignal.timeout(pieceDeadline(end - start, request.timeout));
  const headers: Record<string, string> = { range: `bytes=${start}-${end - 1}` };
  if (request.token !== undefined) headers.authorization = `Bearer ${request.token}`;
  let response: Response;
  try {
    response = await fetchHead(url, { headers, client, signal }, deadline, piecePort);
  } catch (cause) {
    if (cause instanceof PortUnreachable) throw cause;
    if (signal.aborted) return 0;
    if (deadline.aborted) throw fault("timeout", "no answer in time", cause);
    throw fault("unreachable", (cause as Error).message, cause);
  }
  const refused = checkAnswer(response.status, response.headers.get("content-range"), record, run);
  if (refused !== undefined || response.body === null) {
    await response.body?.cancel();
    throw refused ?? fault("length", "answered without a body");
  }
  request.accepted?.();
  // Object offsets map to `target` indices by `base`.
  const base = request.at - start;
  const last = base + end;
  let at = request.at;
  // The piece the next byte belongs to, and where it ends in `target`.
  let current = piece;
  let edge = Math.min(last, base + (current + 1) * pieceSize);
  // One scratch buffer, read into again and again: no new buffer per chunk.
  const reader = response.body.getReader({ mode: "byob" });
  let scratch = new Uint8Array(READ_BYTES);
  try {
    for (;;) {
      const { done, value } = await reader.read(scratch);
      if (done || value === undefined) break;
      scratch = new Uint8Array(value.buffer);
      if (
        signal.aborted || await request.onChunk?.(value.length, current) === false ||
        signal.aborted
      ) {
        await reader.cancel().catch(() => {});
        return current - piece;
      }
      if (at + value.length > last) {
        throw fault("length", `sent more than the ${end - start} bytes asked`);
      }
      run.write(at, value);
      request.received?.(value.length);
      at += value.length;
      while (at >= edge && current < piece + count) {
        request.landed(current, base + current * pieceSize, edge);
        current++;
        edge = Math.min(last, edge + pieceSize);
      }
    }
  } catch (cause) {
    await reader.cancel().catch(() => {});
    // Bytes that could not land (no memory): no fault of the source.
    if (cause instanceof SourceError || cause instanceof PackiceError) throw cause;
    if (signal.aborted) return current - piece;
    if (deadline.aborted) throw fault("timeout", "pieces not received in time", cause);
    throw fault("unreachable", `cut off: ${(cause as Error).message}`, cause);
  }
  if (at !== last) throw fault("length", `sent ${at - request.at} of the ${end - start} bytes`);
  return count;
}

/** The request of a run for a native connection, or undefined when too long for one. */
function requestText(
  request: PieceRequest,
  url: URL,
  endpoint: Endpoint,
  run: Run,
): string | undefined {
  let text = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${endpoint.host}\r\n` +
    `range: bytes=${run.start}-${run.end - 1}\r\n`;
  if (request.token !== undefined) text += `authorization: Bearer ${request.token}\r\n`;
  text += "\r\n";
  // Header values are checked ASCII without line breaks (the token at start): one byte a char.
  return text.length <= REQUEST_MAX && /^[\x20-\x7e\r\n]*$/.test(text) ? text : undefined;
}

/**
 * A run of pieces over a native connection: the body lands straight in the
 * target and is hashed on the way, a step of at most {@link STEP_BYTES} per
 * call, so `onChunk` (the rate limit) is asked before each step.
 *
 * @param piecePort When `endpoint` is a holder's piece port: whether it is on
 *   probation, and what to tell once it answered. No answer's head from it
 *   (refused, reset, or on probation none within {@link PROBATION_MS})
 *   throws {@link PortUnreachable}.
 */
async function receivePieces(
  request: PieceRequest,
  client: RangeClient,
  endpoint: Endpoint,
  message: string,
  run: Run,
  piecePort?: PiecePortTrial,
): Promise<number> {
  const { record, piece, count, target, signal } = request;
  const { pieceSize } = record;
  const { start, end, fault, memory } = run;
  if (request.at < 0 || request.at + (end - start) > (memory?.length ?? (target as Landing).size)) {
    throw new RangeError(`Cannot receive ${end - start} bytes at ${request.at} of the target`);
  }
  if (signal.aborted) return 0;
  const deadline = performance.now() + pieceDeadline(end - start, request.timeout);
  const left = () => deadline - performance.now();
  let { connection, reused } = open(client, endpoint, fault, piecePort !== undefined);
  let reusable = false;
  const cancel = () => connection.cancel();
  signal.addEventListener("abort", cancel);
  let current = piece;
  try {
    let head: string;
    for (;;) {
      try {
        const wait = piecePort?.probation === true ? Math.min(left(), PROBATION_MS) : left();
        head = await connection.request(message, wait);
        break;
      } catch (cause) {
        if (signal.aborted) return 0;
        if (!(cause instanceof ConnectionError)) throw cause;
        if (piecePort !== undefined && !reused && (!cause.timedOut || piecePort.probation)) {
          throw new PortUnreachable(cause.message, { cause });
        }
        if (cause.timedOut) throw fault("timeout", "no answer in time", cause);
        // A keep-alive connection the holder closed meanwhile: once more on a new one.
        if (!reused) throw fault("unreachable", cause.message, cause);
        client.give(endpoint, connection, false);
        ({ connection, reused } = open(client, endpoint, fault, piecePort !== undefined));
        reused = false;
      }
    }
    piecePort?.answered();
    const answer = parseHead(head);
    const refused = checkAnswer(
      answer.status,
      answer.headers.get("content-range") ?? null,
      record,
      run,
    );
    if (refused !== undefined) {
      // A refusal's short body (a busy source's JSON error) is read off: the
      // connection serves the next request, where a new one would cost a
      // connect here and an accept, and a connection to its server, there.
      reusable = await drained(connection, answer.headers, left());
      throw refused;
    }
    const length = answer.headers.get("content-length") ?? null;
    if (answer.headers.has("transfer-encoding") || length !== String(end - start)) {
      throw fault("length", `content length ${length}, not ${end - start}`);
    }
    request.accepted?.();
    const base = request.at - start;
    const most = Math.max(1, request.step ?? STEP_BYTES);
    for (; current < piece + count; current++) {
      // Hashed as its record names: a record from an older daemon names SHA-256.
      const algorithm = pieceAlgorithm(record.pieceDigests[current] ?? "") ?? newPieceAlgorithm();
      const from = Math.max(start, current * pieceSize);
      const to = Math.min(end, from + pieceSize);
      for (let at = from; at < to; at += most) {
        const step = Math.min(most, to - at);
        if (
          signal.aborted || await request.onChunk?.(step, current) === false || signal.aborted
        ) {
          return current - piece;
        }
        if (left() <= 0) throw fault("timeout", "pieces not received in time");
        const flags = (at === from ? hashStart(algorithm) : 0) | (at + step === to ? HASH_END : 0);
        try {
          if (memory === undefined) {
            // Throws once the landing is closed: no byte may land, nor the source be blamed.
            const fd = (target as Landing).fd!;
            await connection.recvFd(fd, base + at, step, left(), flags);
          } else {
            const into = memory.subarray(base + at, base + at + step);
            await receiveInto(connection, into, step, left(), flags);
          }
        } catch (cause) {
          if (signal.aborted) return current - piece;
          if (!(cause instanceof ConnectionError)) throw cause;
          if (cause.timedOut) throw fault("timeout", "pieces not received in time", cause);
          throw fault("unreachable", `cut off: ${cause.message}`, cause);
        }
        request.received?.(step);
      }
      request.landed(current, base + from, base + to, connection.digest());
    }
    reusable = connection.pending === 0 &&
      !/\bclose\b/i.test(answer.headers.get("connection") ?? "");
    return count;
  } finally {
    signal.removeEventListener("abort", cancel);
    client.give(endpoint, connection, reusable);
  }
}

/** The most bytes of a refusal's body read off to keep its connection. */
const DRAIN_MAX = 16 << 10;

/**
 * Reads off the body of an answer not taken, when it is short and its
 * length known, so that the connection can serve the next request.
 *
 * @returns Whether the connection can be reused.
 */
async function drained(
  connection: RangeConnection,
  headers: ReadonlyMap<string, string>,
  timeoutMs: number,
): Promise<boolean> {
  const text = headers.get("content-length") ?? "";
  const length = Number(text);
  if (
    !/^\d{1,5}$/.test(text) || length > DRAIN_MAX ||
    headers.has("transfer-encoding") || /\bclose\b/i.test(headers.get("connection") ?? "")
  ) {
    return false;
  }
  // Came with the head, most often: the next request starts after the head.
  const pending = connection.pending;
  if (pending >= length) return pending === length;
  try {
    // Off V8's heap: the call writes it on another thread.
    await connection.recv(new Uint8Array(new ArrayBuffer(length)), timeoutMs, 0);
  } catch {
    return false;
  }
  return connection.pending === 0;
}

/**
 * Receives into memory: `into` detached (its mapping closed under the
 * transfer) takes no byte, nor blames the source.
 */
async function receiveInto(
  connection: RangeConnection,
  into: Uint8Array,
  step: number,
  timeoutMs: number,
  flags: number,
): Promise<void> {
  if (into.length !== step) throw new RangeError("Cannot receive into a target that was closed");
  // A small buffer may sit in V8's heap, where it can move while the
  // call writes it: a bounce buffer of its own, then a copy.
  const bounce = into.buffer.byteLength < OFF_HEAP_MIN
    ? new Uint8Array(new ArrayBuffer(step))
    : undefined;
  await connection.recv(bounce ?? into, timeoutMs, flags);
  if (bounce !== undefined) into.set(bounce);
}

/**
 * A connection to `endpoint`; a socket that cannot be made is the source's
 * fault, or at a piece port (`piecePort`), that port's.
 */
function open(
  client: RangeClient,
  endpoint: Endpoint,
  fault: Run["fault"],
  piecePort: boolean,
): { connection: RangeConnection; reused: boolean } {
  try {
    return client.take(endpoint);
  } catch (cause) {
    if (!(cause instanceof ConnectionError)) throw cause;
    if (piecePort) throw new PortUnreachable(cause.message, { cause });
    throw fault("unreachable", cause.message, cause);
  }
}

/**
 * Checks one piece's bytes against its digest in the record.
 *
 * @param bytes The piece, or what gives it (called only when `known` is
 *   not); its memory must stay as it is, and mapped, until the promise settles.
 * @param known Their digest, taken as they landed: then they are not read again.
 * @throws {SourceError} `digest` when they hash to something else.
 */
export async function checkPiece(
  record: ContentRecord,
  piece: number,
  bytes: Uint8Array | (() => Uint8Array),
  holder: Holder,
  known?: string,
): Promise<void> {
  const expected = record.pieceDigests[piece] ?? "";
  const digest = known ??
    await digestLike(typeof bytes === "function" ? bytes() : bytes, expected);
  if (digest !== expected) {
    throw new SourceError(
      "digest",
      holder,
      `piece ${piece} of ${record.id}: bytes hash to ${digest}, not ${expected}`,
    );
  }
}
