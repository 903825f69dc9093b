/** The bytes of the big object of http_body_stream_test: each MiB its own run, so order shows. */
export function patternByte(at: number): number {
  return (at + (at >>> 20) * 7 + (at >>> 8)) & 255;
}

/** `length` bytes of the pattern from `at`. */
export function patternBytes(at: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = patternByte(at + i);
  return bytes;
}
