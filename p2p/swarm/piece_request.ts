/**
 * A run of consecutive pieces of an object asked of one source in one HTTP
 * Range request, their bytes written as they land into a target (the
 * object's blob view, or a scratch piece for an endgame duplicate). Each
 * piece is handed on as soon as its last byte is in, and the request reads
 * on: checking a piece against its digest ({@link checkPiece}) never holds
 * up the bytes of the next.
 *
 * @module
 */
import type { ContentRecord, Holder } from "../directory.ts";
import { sha256 } from "../sha256.ts";
import { SourceError, type SourceFault } from "../source_error.ts";
import { pieceDeadline, type PieceTimeout } from "./piece_timeout.ts";

/** The most bytes taken from a response body at once. */
const READ_BYTES = 1 << 20;

/** What {@link requestPieces} needs. */
export interface PieceRequest {
  readonly record: ContentRecord;
  /** The first piece of the run. */
  readonly piece: number;
  /** Pieces in the run, 1 or more. */
  readonly count: number;
  readonly holder: Holder;
  /** Where the bytes go: `target[at..]` gets the run's first byte. */
  readonly target: Uint8Array;
  /** The index in `target` of the run's first byte. */
  readonly at: number;
  readonly client: Deno.HttpClient;
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
  /** The source answered with the range: the pieces are on their way. */
  readonly accepted?: () => void;
  /** A piece's bytes are all in, at `target[from..to)`; called in order. */
  readonly landed: (piece: number, from: number, to: number) => void;
}

/**
 * Fetches a run of pieces, handing each on as it lands.
 *
 * @returns How many pieces landed: all of them, or fewer when stopped by `signal` or `onChunk`.
 * @throws {SourceError} When the source fails: the pieces not landed are to be asked elsewhere.
 */
export async function requestPieces(request: PieceRequest): Promise<number> {
  const { record, piece, count, holder, target, signal } = request;
  const { id, size, pieceSize } = record;
  const start = piece * pieceSize;
  const end = Math.min(size, (piece + count) * pieceSize);
  const deadline = AbortSignal.timeout(pieceDeadline(end - start, request.timeout));
  const headers: Record<string, string> = { range: `bytes=${start}-${end - 1}` };
  if (request.token !== undefined) headers.authorization = `Bearer ${request.token}`;
  const url = `${holder.address}/v1/objects/${encodeURIComponent(id)}?local=1`;
  const what = count === 1 ? `piece ${piece}` : `pieces ${piece}-${piece + count - 1}`;
  const fault = (kind: SourceFault, message: string, cause?: unknown) =>
    new SourceError(kind, holder, `${what} of ${id}: ${message}`, { cause });
  let response: Response;
  try {
    response = await fetch(url, {
      headers,
      client: request.client,
      signal: AbortSignal.any([signal, deadline]),
    });
  } catch (cause) {
    if (signal.aborted) return 0;
    if (deadline.aborted) throw fault("timeout", "no answer in time", cause);
    throw fault("unreachable", (cause as Error).message, cause);
  }
  if (response.status !== 206 || response.body === null) {
    await response.body?.cancel();
    const kind = response.status === 404 ? "missing" : response.status === 503 ? "busy" : "status";
    throw fault(kind, `answered ${response.status} to a range request`);
  }
  if (response.headers.get("content-range") !== `bytes ${start}-${end - 1}/${size}`) {
    await response.body.cancel();
    throw fault(
      "length",
      `content range ${response.headers.get("content-range")}, not bytes ${start}-${
        end - 1
      }/${size}`,
    );
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
      target.set(value, at);
      at += value.length;
      while (at >= edge && current < piece + count) {
        request.landed(current, base + current * pieceSize, edge);
        current++;
        edge = Math.min(last, edge + pieceSize);
      }
    }
  } catch (cause) {
    await reader.cancel().catch(() => {});
    if (cause instanceof SourceError) throw cause;
    if (signal.aborted) return current - piece;
    if (deadline.aborted) throw fault("timeout", "pieces not received in time", cause);
    throw fault("unreachable", `cut off: ${(cause as Error).message}`, cause);
  }
  if (at !== last) throw fault("length", `sent ${at - request.at} of the ${end - start} bytes`);
  return count;
}

/**
 * Checks one piece's bytes against its digest in the record.
 *
 * @param bytes The piece; its memory must stay as it is, and mapped, until the promise settles.
 * @throws {SourceError} `digest` when they hash to something else.
 */
export async function checkPiece(
  record: ContentRecord,
  piece: number,
  bytes: Uint8Array,
  holder: Holder,
): Promise<void> {
  const digest = await sha256(bytes as Uint8Array<ArrayBuffer>);
  const expected = record.pieceDigests[piece];
  if (digest !== expected) {
    throw new SourceError(
      "digest",
      holder,
      `piece ${piece} of ${record.id}: bytes hash to ${digest}, not ${expected}`,
    );
  }
}
