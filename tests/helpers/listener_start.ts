/**
 * Starts the native GET listener (native/packice.c, section 11) for the test
 * children that drive it directly: on 127.0.0.1, any port, no token, requests
 * it does not answer handed to `upstreamPort` on 127.0.0.1.
 */

/** `pk_hg_start` as native/ffi.ts declares it, from the library a child opened. */
export type ListenerStart = (
  host: BufferSource | null,
  port: number,
  upstreamHost: BufferSource | null,
  upstreamPort: number,
  token: BufferSource | null,
  tokenLength: number,
  secret: BufferSource | null,
  secretLength: number,
  bucket: Deno.PointerValue,
  slice: bigint,
  out: BufferSource | null,
) => number;

/**
 * Starts a listener with `start`, unpaced, taking tickets only given a
 * `secret`; its port and handle. Throws when it cannot start.
 */
export function startListener(
  start: ListenerStart,
  upstreamPort: number,
  secret?: Uint8Array<ArrayBuffer>,
): { port: number; handle: Deno.PointerValue } {
  const local = new TextEncoder().encode("127.0.0.1\0");
  const out = new BigUint64Array(1);
  const none = new Uint8Array(1);
  const port = start(
    local,
    0,
    local,
    upstreamPort,
    none,
    0,
    secret ?? none,
    secret?.length ?? 0,
    null,
    0n,
    out,
  );
  if (port < 0) throw new Error(`Cannot start the listener: errno ${-port}`);
  return { port, handle: Deno.UnsafePointer.create(out[0]!) };
}
