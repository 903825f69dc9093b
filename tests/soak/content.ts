/**
 * The bytes a soak client writes: slices of one random buffer, each stamped
 * with its id's generation and a nonce, so that a re-put under an id never
 * has the bytes of the object it replaces and a stale read shows in its digest.
 */
import { createHash } from "node:crypto";

const KiB = 1024;

/** Random bytes to cut objects from, `size` long. */
export function randomBase(size: number): Uint8Array<ArrayBuffer> {
  const base = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(base.subarray(offset, Math.min(offset + 65536, size)));
  }
  return base;
}

/** The hex SHA-256 of bytes given in one or more pieces. */
export function digestOf(...pieces: Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const piece of pieces) hash.update(piece);
  return hash.digest("hex");
}

/**
 * A size from 1 KiB to `max`, spread evenly over the powers of two but with
 * the large ones rarer (the square of a uniform exponent): most operations are
 * small, and a few in a hundred move tens of MiB.
 */
export function pickSize(max: number): number {
  const octaves = Math.log2(max / KiB);
  const r = Math.random();
  return Math.max(KiB, Math.min(max, Math.floor(KiB * 2 ** (octaves * r * r))));
}

/** The 16-byte stamp that starts an object: its generation and a nonce. */
export function stamp(generation: number): Uint8Array<ArrayBuffer> {
  const head = new Uint8Array(16);
  new DataView(head.buffer).setFloat64(0, generation);
  crypto.getRandomValues(head.subarray(8));
  return head;
}
