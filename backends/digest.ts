/**
 * Content digests of objects, for entity tags, computed chunk by chunk so a
 * large object is never read whole into JS.
 *
 * With the native library: `xxh64:<hex>`, the XXH64 (seed 0) of the
 * little-endian XXH64 digests of each 4 MiB chunk of each blob, in order.
 * Without it: `sha256:<hex>`, the SHA-256 of the bytes. The prefix names the
 * algorithm, so digests from either kind of build never collide.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Blob } from "../core/blob.ts";
import { writeBigUint64 } from "../core/little_endian.ts";
import { loadNative } from "../native/load.ts";

/** Bytes hashed per step. */
const CHUNK = 4 << 20;

type Hash64 = (bytes: Uint8Array) => bigint;

let nativeHash: { hash: Hash64 | undefined } | undefined;

/** XXH64 from the native library, or undefined when it cannot be loaded. */
function hash64(): Hash64 | undefined {
  if (nativeHash === undefined) {
    let hash: Hash64 | undefined;
    try {
      const native = loadNative();
      if (native !== undefined) {
        const { pk_hash64 } = native.symbols;
        hash = (bytes) => BigInt(pk_hash64(bytes, BigInt(bytes.length), 0n));
      }
    } catch {
      // No permission or a broken override: digests fall back to SHA-256.
    }
    nativeHash = { hash };
  }
  return nativeHash.hash;
}

/**
 * Computes the content digest of an object's blobs, reading through views
 * where the backend has them and in chunks otherwise.
 *
 * @param blobs The blobs of a sealed object, under a live lease.
 * @returns The digest, such as `xxh64:0123456789abcdef`.
 */
export async function computeDigest(blobs: readonly Blob[]): Promise<string> {
  const hash = hash64();
  if (hash === undefined) {
    const sha = createHash("sha256");
    await eachChunk(blobs, (chunk) => sha.update(chunk));
    return `sha256:${sha.digest("hex")}`;
  }
  const digests: bigint[] = [];
  await eachChunk(blobs, (chunk) => digests.push(hash(chunk)));
  const joined = new Uint8Array(digests.length * 8);
  digests.forEach((digest, index) => writeBigUint64(joined, index * 8, digest));
  const whole = hash(joined);
  return `xxh64:${whole.toString(16).padStart(16, "0")}`;
}

async function eachChunk(blobs: readonly Blob[], use: (chunk: Uint8Array) => void): Promise<void> {
  for (const blob of blobs) {
    const view = blob.openView();
    try {
      for (let offset = 0; offset < blob.size; offset += CHUNK) {
        const end = Math.min(offset + CHUNK, blob.size);
        use(
          view === undefined ? await blob.read(offset, end - offset) : view.subarray(offset, end),
        );
      }
    } finally {
      if (view !== undefined) blob.closeView(view);
    }
  }
}
