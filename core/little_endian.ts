/**
 * Little-endian binary fields, the byte order of every binary format
 * Packice writes (the Unix-socket frames, digests of digests): the one place
 * that reads and writes them. Integers are shifted byte by byte, cheaper
 * than a `DataView` made per field; floats and 64-bit integers go through a
 * shared typed array, which is in the platform's byte order, so loading this
 * module checks that the platform is little-endian (x86-64 and AArch64 are).
 *
 * @example Write and read a u32
 * ```ts
 * import { readUint32, writeUint32 } from "./little_endian.ts";
 * const bytes = new Uint8Array(4);
 * writeUint32(bytes, 0, 0x01020304);
 * console.log(bytes[0], readUint32(bytes, 0) === 0x01020304); // 4 true
 * ```
 *
 * @module
 */

if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) {
  throw new Error("Cannot load Packice: it needs a little-endian platform");
}

const float = new Float64Array(1);
const floatBytes = new Uint8Array(float.buffer);
const big = new BigUint64Array(1);
const bigBytes = new Uint8Array(big.buffer);

/** Writes a u16 at `at`. */
export function writeUint16(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
}

/** Reads a u16 at `at`. */
export function readUint16(bytes: Uint8Array, at: number): number {
  return bytes[at]! | bytes[at + 1]! << 8;
}

/** Writes a u32 at `at`. */
export function writeUint32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
  bytes[at + 2] = value >>> 16;
  bytes[at + 3] = value >>> 24;
}

/** Reads a u32 at `at`. */
export function readUint32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | bytes[at + 1]! << 8 | bytes[at + 2]! << 16 | bytes[at + 3]! << 24) >>> 0;
}

/** Writes an f64 at `at`. */
export function writeFloat64(bytes: Uint8Array, at: number, value: number): void {
  float[0] = value;
  bytes.set(floatBytes, at);
}

/** Reads an f64 at `at`. */
export function readFloat64(bytes: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) floatBytes[i] = bytes[at + i]!;
  return float[0]!;
}

/** Writes a u64 at `at`. */
export function writeBigUint64(bytes: Uint8Array, at: number, value: bigint): void {
  big[0] = value;
  bytes.set(bigBytes, at);
}
