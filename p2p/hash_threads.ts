/**
 * What the one-call hashes of content records share: the native library's
 * symbols, the size under which a hash stays on the JS thread, and the gate
 * that keeps Deno's thread pool from being taken over by them.
 *
 * @module
 */
import { Errno, errnoError } from "../native/errno.ts";
import { loadNative, type Native } from "../native/load.ts";

let native: { symbols: Native["symbols"] | undefined } | undefined;

/** The native library's symbols, or undefined when it cannot be loaded. */
export function hashSymbols(): Native["symbols"] | undefined {
  if (native === undefined) {
    let loaded: Native["symbols"] | undefined;
    try {
      loaded = loadNative()?.symbols;
    } catch {
      // No permission or a broken override: the hashes fall back to JS.
    }
    native = { symbols: loaded };
  }
  return native.symbols;
}

/**
 * Inputs shorter than this hash on the JS thread. Besides saving a trip to
 * the thread pool, this keeps small typed arrays, whose bytes V8 may keep in
 * its heap and move while a call on another thread reads them, off that path:
 * a view this long sits in a buffer of its own, outside the heap.
 */
export const OFF_THREAD_MIN = 64 << 10;

/**
 * One-call hashes running on the thread pool at once, process-wide. That
 * pool (32 threads) also serves file-system calls and DNS: a 256 MiB record
 * queues 64 piece hashes, which must not take it over. Two keep two cores
 * busy; a whole-object hash runs beside them.
 */
const HASH_THREADS = 2;
let hashing = 0;
const waiting: Array<() => void> = [];

/**
 * Hashes `bytes` (at least {@link OFF_THREAD_MIN} long) on the thread pool
 * with `call`, which writes 32 bytes at `out`, once one of the pool's
 * hashing turns is free.
 *
 * @returns The 32 bytes, as hex.
 */
export async function hashOffThread(
  bytes: Uint8Array,
  call: (data: Deno.PointerValue, length: bigint, out: Deno.PointerValue) => Promise<void>,
): Promise<string> {
  if (hashing >= HASH_THREADS) await new Promise<void>((go) => waiting.push(go));
  hashing++;
  let out: Deno.PointerObject | undefined;
  try {
    const lib = hashSymbols()!;
    out = cMemory(lib, 32);
    await call(pointerOf(bytes), BigInt(bytes.length), out);
    // Kept alive until the call is done.
    void bytes.length;
    const digest = new Uint8Array(32);
    lib.pk_copy_out(digest, out, 32n);
    return hex(digest);
  } finally {
    if (out !== undefined) hashSymbols()!.pk_free(out);
    hashing--;
    waiting.shift()?.();
  }
}

/**
 * Memory the library owns, for what a call on the thread pool writes: the
 * runtime frees the memory of JS buffers when it ends (a test module's
 * worker does at the module's end, not waiting for the pool), and a call
 * still running would then write into freed heap, corrupting it.
 *
 * @throws {CapacityExceededError} When there is none.
 */
export function cMemory(lib: Native["symbols"], bytes: number): Deno.PointerObject {
  const memory = lib.pk_alloc(BigInt(bytes));
  if (memory === null) throw errnoError(Errno.ENOMEM, "allocating a hash's state");
  return memory;
}

/** The address of `bytes`, for a call on another thread. */
export function pointerOf(bytes: Uint8Array): Deno.PointerValue {
  return Deno.UnsafePointer.of(bytes as Uint8Array<ArrayBuffer>);
}

/** `bytes` as lowercase hex. */
export function hex(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += byte.toString(16).padStart(2, "0");
  return text;
}
