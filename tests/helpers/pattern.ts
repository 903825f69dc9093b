/** Bytes for tests: patterned so that a wrong offset or a mixed-up object shows. */

/** Chunk `index` of `size` bytes: its index in the first four bytes, then its byte `index & 255`. */
export function patternChunk(index: number, size: number): Uint8Array {
  const chunk = new Uint8Array(size).fill(index & 255);
  new DataView(chunk.buffer).setUint32(0, index);
  return chunk;
}

/** Whether `bytes` are chunks 0, 1, … of `size` bytes from {@link patternChunk}; the first wrong offset, else -1. */
export function checkPattern(bytes: Uint8Array, size: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0, index = 0; at < bytes.length; at += size, index++) {
    if (view.getUint32(at) !== index) return at;
    const fill = index & 255;
    for (let i = at + 4; i < at + size; i += 251) if (bytes[i] !== fill) return i;
    if (bytes[at + size - 1] !== fill) return at + size - 1;
  }
  return -1;
}

/** Bytes of `size` that differ from object to object with `seed`. */
export function pattern(size: number, seed: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 255;
    bytes[i + 1] = (x >>> 8) & 255;
    bytes[i + 2] = (x >>> 16) & 255;
    bytes[i + 3] = (x >>> 24) & 255;
  }
  return bytes;
}
