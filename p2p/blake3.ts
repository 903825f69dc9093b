/**
 * BLAKE3 (32-byte hashes) for piece digests: the native library's, which
 * hashes many 1 KiB chunks at once in SIMD lanes (several GB/s a core,
 * against SHA-256's 1.8 with the SHA extensions), on Deno's thread pool
 * straight over the caller's memory; without the library, in plain
 * TypeScript, slowly but the same.
 *
 * @module
 */
import { hashOffThread, hashSymbols, hex, OFF_THREAD_MIN } from "./hash_threads.ts";

/**
 * The BLAKE3 hash of `bytes` as `blake3:<hex>`, computed on another thread
 * when they are large.
 *
 * @param bytes A view; its memory must stay as it is, and mapped, until the promise settles.
 *
 * @example
 * ```ts
 * import { blake3 } from "@packice/packice";
 * console.log(await blake3(new Uint8Array(0)));
 * // blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262
 * ```
 */
export async function blake3(bytes: Uint8Array): Promise<string> {
  const lib = hashSymbols();
  if (lib === undefined) return `blake3:${hex(blake3Portable(bytes))}`;
  if (bytes.length < OFF_THREAD_MIN) {
    const out = new Uint8Array(32);
    lib.pk_blake3(bytes as Uint8Array<ArrayBuffer>, BigInt(bytes.length), out);
    return `blake3:${hex(out)}`;
  }
  return `blake3:${await hashOffThread(bytes, lib.pk_blake3_nb)}`;
}

const IV = [
  0x6A09E667,
  0xBB67AE85,
  0x3C6EF372,
  0xA54FF53A,
  0x510E527F,
  0x9B05688C,
  0x1F83D9AB,
  0x5BE0CD19,
];
const SCHEDULE = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8],
  [3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1],
  [10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6],
  [12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4],
  [9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7],
  [11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13],
] as const;
const CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8;

// The state and message words of the compression under way: one set, reused.
const v = new Uint32Array(16);
const m = new Uint32Array(16);

/** Makes `cv` the next CV (or with ROOT the hash) from a block of up to 64 bytes. */
function compress(cv: Uint32Array, block: Uint8Array, counter: number, flags: number): void {
  if (block.length === 64) {
    const words = new DataView(block.buffer, block.byteOffset, 64);
    for (let i = 0; i < 16; i++) m[i] = words.getUint32(4 * i, true);
  } else {
    m.fill(0);
    for (let i = 0; i < block.length; i++) m[i >> 2]! |= block[i]! << (8 * (i & 3));
  }
  v.set(cv);
  v.set(IV_HALF, 8);
  v[12] = counter >>> 0;
  v[13] = Math.floor(counter / 2 ** 32);
  v[14] = block.length;
  v[15] = flags;
  for (const s of SCHEDULE) {
    g(0, 4, 8, 12, m[s[0]]!, m[s[1]]!);
    g(1, 5, 9, 13, m[s[2]]!, m[s[3]]!);
    g(2, 6, 10, 14, m[s[4]]!, m[s[5]]!);
    g(3, 7, 11, 15, m[s[6]]!, m[s[7]]!);
    g(0, 5, 10, 15, m[s[8]]!, m[s[9]]!);
    g(1, 6, 11, 12, m[s[10]]!, m[s[11]]!);
    g(2, 7, 8, 13, m[s[12]]!, m[s[13]]!);
    g(3, 4, 9, 14, m[s[14]]!, m[s[15]]!);
  }
  for (let i = 0; i < 8; i++) cv[i] = v[i]! ^ v[i + 8]!;
}

const IV_HALF = IV.slice(0, 4);

function g(a: number, b: number, c: number, d: number, x: number, y: number): void {
  v[a] = v[a]! + v[b]! + x;
  v[d] = rotr(v[d]! ^ v[a]!, 16);
  v[c] = v[c]! + v[d]!;
  v[b] = rotr(v[b]! ^ v[c]!, 12);
  v[a] = v[a]! + v[b]! + y;
  v[d] = rotr(v[d]! ^ v[a]!, 8);
  v[c] = v[c]! + v[d]!;
  v[b] = rotr(v[b]! ^ v[c]!, 7);
}

function rotr(x: number, n: number): number {
  return (x >>> n) | (x << (32 - n));
}

/** The CV of chunk number `counter` (1 KiB at most), or with ROOT the hash. */
function chunk(bytes: Uint8Array, counter: number, root: number): Uint32Array {
  const blocks = Math.max(1, Math.ceil(bytes.length / 64));
  const cv = Uint32Array.from(IV);
  for (let b = 0; b < blocks; b++) {
    const flags = (b === 0 ? CHUNK_START : 0) | (b === blocks - 1 ? CHUNK_END | root : 0);
    compress(cv, bytes.subarray(64 * b, 64 * b + 64), counter, flags);
  }
  return cv;
}

function parent(left: Uint32Array, right: Uint32Array, root: number): Uint32Array {
  const block = new Uint8Array(64);
  block.set(new Uint8Array(left.buffer, left.byteOffset, 32));
  block.set(new Uint8Array(right.buffer, right.byteOffset, 32), 32);
  const cv = Uint32Array.from(IV);
  compress(cv, block, 0, PARENT | root);
  return cv;
}

/**
 * BLAKE3 in plain TypeScript, for when the native library is not loaded:
 * the chunks in order, each complete subtree merged as soon as it is (the
 * last chunk, which may be the root, last of all).
 */
export function blake3Portable(bytes: Uint8Array): Uint8Array {
  const chunks = Math.max(1, Math.ceil(bytes.length / 1024));
  const stack: Uint32Array[] = [];
  for (let i = 0; i < chunks - 1; i++) {
    let cv = chunk(bytes.subarray(1024 * i, 1024 * i + 1024), i, 0);
    for (let total = i + 1; total % 2 === 0; total /= 2) cv = parent(stack.pop()!, cv, 0);
    stack.push(cv);
  }
  let cv = chunk(bytes.subarray(1024 * (chunks - 1)), chunks - 1, stack.length === 0 ? ROOT : 0);
  while (stack.length > 0) {
    const left = stack.pop()!;
    cv = parent(left, cv, stack.length === 0 ? ROOT : 0);
  }
  // Little-endian words, on any host.
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = cv[i >> 2]! >>> (8 * (i & 3));
  return out;
}
