/**
 * Content records: the SHA-256 of a sealed object and the digest of each of
 * its pieces (BLAKE3 in new records: `piece_digest.ts`), computed at seal by
 * its first holder and checked by every fetcher.
 *
 * Piece size follows Dragonfly: the next power of two of size / 500, clamped
 * to 4–64 MiB. Up to 2000 MiB that is 4 MiB, Kraken's piece and the chunk the
 * rest of Packice reads in; above it pieces grow so that a record never lists
 * more than about 500 digests (35 KB), while a piece stays small enough to
 * refetch cheaply from another source when one fails.
 *
 * @module
 */
import type { Blob } from "../core/blob.ts";
import { CapacityExceededError, InvalidArgumentError } from "../core/errors.ts";
import type { ContentRecord } from "./directory.ts";
import { bindRecord } from "./record_binding.ts";
import { onePieceAlgorithm, pieceDigest } from "./piece_digest.ts";
import { wholeHash } from "./sha256.ts";

/** The smallest piece, and the piece of every object up to 2 GiB: 4 MiB. */
export const MIN_PIECE_SIZE = 4 << 20;
/** The largest piece: 64 MiB. */
export const MAX_PIECE_SIZE = 64 << 20;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * The piece size of an object of `size` bytes.
 *
 * @example
 * ```ts
 * import { pieceSizeFor } from "@packice/packice";
 * console.log(pieceSizeFor(256 << 20)); // 4194304
 * console.log(pieceSizeFor(10 * 1024 ** 3)); // 33554432
 * ```
 */
export function pieceSizeFor(size: number): number {
  let piece = MIN_PIECE_SIZE;
  while (piece < size / 500 && piece < MAX_PIECE_SIZE) piece *= 2;
  return piece;
}

/** How many pieces an object of `size` bytes has with pieces of `pieceSize`. */
export function pieceCount(size: number, pieceSize: number): number {
  return Math.ceil(size / pieceSize);
}

/**
 * Computes the content record of a sealed object: the whole and the pieces
 * hashed side by side on other threads (see `hash_threads.ts`), through views where the
 * backend has them (no copy into JS) and in reads of one piece otherwise.
 *
 * @param id The object id.
 * @param blobs Its blobs, under a live lease.
 * @param token The cluster token, which keys the record's binding; without it, no binding.
 */
export async function contentRecord(
  id: string,
  blobs: readonly Blob[],
  token?: string,
): Promise<ContentRecord> {
  let size = 0;
  for (const blob of blobs) size += blob.size;
  const pieceSize = pieceSizeFor(size);
  const whole = wholeHash();
  const pieces: Promise<string>[] = [];
  const views: Array<[Blob, Uint8Array]> = [];
  try {
    // A piece that spans two blobs is hashed in one piece-sized copy.
    let spanning: Uint8Array<ArrayBuffer> | undefined;
    let filled = 0;
    for (const blob of blobs) {
      const view = blob.openView();
      if (view !== undefined) {
        views.push([blob, view]);
        // One call for the whole blob: it runs beside the pieces.
        whole.update(view);
      }
      let offset = 0;
      while (offset < blob.size) {
        const want = spanning === undefined ? pieceSize : pieceSize - filled;
        const length = Math.min(want, blob.size - offset);
        const bytes = (view?.subarray(offset, offset + length) ??
          await blob.read(offset, length)) as Uint8Array<ArrayBuffer>;
        if (view === undefined) whole.update(bytes);
        offset += length;
        if (spanning === undefined && length === pieceSize) {
          pieces.push(pieceDigest(bytes));
          continue;
        }
        spanning ??= new Uint8Array(pieceSize);
        spanning.set(bytes, filled);
        filled += length;
        if (filled === pieceSize) {
          pieces.push(pieceDigest(spanning));
          spanning = undefined;
          filled = 0;
        }
      }
    }
    if (spanning !== undefined) pieces.push(pieceDigest(spanning.subarray(0, filled)));
    const digest = await whole.digest();
    const record = { id, size, digest, pieceSize, pieceDigests: await Promise.all(pieces) };
    return token === undefined ? record : { ...record, binding: bindRecord(record, token) };
  } finally {
    // Nothing may still read a view when it closes.
    await Promise.allSettled(pieces);
    await whole.settled();
    for (const [blob, view] of views) blob.closeView(view);
  }
}

/**
 * Checks a record that came from the directory, which may be stale or
 * forged: its fields must agree with each other before any byte is fetched,
 * and the object must fit in this daemon.
 *
 * @param maxSize The largest object this daemon would take.
 * @throws {InvalidArgumentError} Naming what is wrong.
 * @throws {CapacityExceededError} When the object, recorded right, is larger than `maxSize`.
 */
export function checkRecord(record: ContentRecord, maxSize: number): ContentRecord {
  const { id, size, pieceSize, pieceDigests, digest } = record;
  const problem = !Number.isSafeInteger(size) || size < 0
    ? `size ${size} is not a byte count`
    : pieceSize !== pieceSizeFor(size)
    ? `piece size ${pieceSize} is not ${pieceSizeFor(size)}`
    : !Array.isArray(pieceDigests) || pieceDigests.length !== pieceCount(size, pieceSize)
    ? `it lists ${pieceDigests?.length} piece digests, not ${pieceCount(size, pieceSize)}`
    : !DIGEST.test(digest)
    ? "its digest is not sha256:<64 hex digits>"
    : !onePieceAlgorithm(pieceDigests)
    ? "its piece digests are not all sha256:<64 hex digits> or all blake3:<64 hex digits>"
    : undefined;
  if (problem !== undefined) {
    throw new InvalidArgumentError(`Invalid directory record of object ${id}: ${problem}`);
  }
  if (size > maxSize) {
    throw new CapacityExceededError(
      `Cannot fetch object ${id}: its ${size} bytes are more than this daemon holds (${maxSize}): ` +
        "raise --capacity (--hot with --impl tiered)",
    );
  }
  return record;
}
