/**
 * One piece of an object asked of one source over HTTP Range, its bytes
 * written as they land into a target (the object's blob view, or a scratch
 * piece for an endgame duplicate) and checked against the piece's digest.
 *
 * @module
 */
import type { ContentRecord, Holder } from "../directory.ts";
import { sha256 } from "../sha256.ts";
import { SourceError, type SourceFault } from "../source_error.ts";
import { pieceDeadline, type PieceTimeout } from "./piece_timeout.ts";

/** What {@link requestPiece} needs. */
export interface PieceRequest {
  readonly record: ContentRecord;
  readonly piece: number;
  readonly holder: Holder;
  /** Where the piece's bytes go: `target[at..]` gets byte `start` of the piece. */
  readonly target: Uint8Array;
  /** The index in `target` of the piece's first byte. */
  readonly at: number;
  readonly client: Deno.HttpClient;
  readonly token?: string | undefined;
  readonly timeout?: PieceTimeout | undefined;
  /** Ends the request without a fault of the source (a cancelled transfer or endgame loser). */
  readonly signal: AbortSignal;
  /**
   * Awaited before each chunk is written, with its length (a rate limit
   * waits here); false stops the request quietly.
   */
  readonly onChunk?: (bytes: number) => Promise<boolean> | boolean;
}

/**
 * Fetches and verifies one piece.
 *
 * @returns Whether the bytes are in and verified; false when stopped by `signal` or `onChunk`.
 * @throws {SourceError} When the source fails: the piece is to be asked elsewhere.
 */
export async function requestPiece(request: PieceRequest): Promise<boolean> {
  const { record, piece, holder, target, signal } = request;
  const { id, size, pieceSize } = record;
  const start = piece * pieceSize;
  const end = Math.min(size, start + pieceSize);
  const deadline = AbortSignal.timeout(pieceDeadline(end - start, request.timeout));
  const headers: Record<string, string> = { range: `bytes=${start}-${end - 1}` };
  if (request.token !== undefined) headers.authorization = `Bearer ${request.token}`;
  const url = `${holder.address}/v1/objects/${encodeURIComponent(id)}?local=1`;
  const fault = (kind: SourceFault, message: string, cause?: unknown) =>
    new SourceError(kind, holder, `piece ${piece} of ${id}: ${message}`, { cause });
  let response: Response;
  try {
    response = await fetch(url, {
      headers,
      client: request.client,
      signal: AbortSignal.any([signal, deadline]),
    });
  } catch (cause) {
    if (signal.aborted) return false;
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
  let at = request.at;
  const last = request.at + end - start;
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (signal.aborted || await request.onChunk?.(value.length) === false || signal.aborted) {
        await reader.cancel().catch(() => {});
        return false;
      }
      if (at + value.length > last) {
        throw fault("length", `sent more than the ${end - start} bytes of the piece`);
      }
      target.set(value, at);
      at += value.length;
    }
  } catch (cause) {
    await reader.cancel().catch(() => {});
    if (cause instanceof SourceError) throw cause;
    if (signal.aborted) return false;
    if (deadline.aborted) throw fault("timeout", "piece not received in time", cause);
    throw fault("unreachable", `cut off: ${(cause as Error).message}`, cause);
  }
  if (at !== last) throw fault("length", `sent ${at - request.at} of the ${end - start} bytes`);
  const digest = await sha256(target.subarray(request.at, last) as Uint8Array<ArrayBuffer>);
  if (signal.aborted) return false;
  if (digest !== record.pieceDigests[piece]) {
    throw fault("digest", `bytes hash to ${digest}, not ${record.pieceDigests[piece]}`);
  }
  return true;
}
