/**
 * SHA-256 for content records, off the JS thread and without copies where
 * the native library is loaded: its SHA-256 (with the x86 SHA extensions
 * where the CPU has them) runs on Deno's thread pool straight over the
 * caller's memory, a blob's mapping included. WebCrypto, the fallback for
 * pieces, copies its input first, as its specification requires; the
 * fallback for whole objects hashes on the JS thread.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Errno, errnoError } from "../native/errno.ts";
import { loadNative, type Native } from "../native/load.ts";

let native: { symbols: Native["symbols"] | undefined } | undefined;

/**
 * Inputs shorter than this hash on the JS thread. Besides saving a trip to
 * the thread pool, this keeps small typed arrays, whose bytes V8 may keep in
 * its heap and move while a call on another thread reads them, off that path:
 * a view this long sits in a buffer of its own, outside the heap.
 */
const OFF_THREAD_MIN = 64 << 10;

/**
 * One-call hashes running on the thread pool at once, process-wide. That
 * pool (32 threads) also serves file-system calls and DNS: a 256 MiB record
 * queues 64 piece hashes, which must not take it over. Two keep two cores
 * busy; a whole-object hash runs beside them.
 */
const HASH_THREADS = 2;
let hashing = 0;
const waiting: Array<() => void> = [];

/** The native library's symbols, or undefined when it cannot be loaded. */
function symbols(): Native["symbols"] | undefined {
  if (native === undefined) {
    let loaded: Native["symbols"] | undefined;
    try {
      loaded = loadNative()?.symbols;
    } catch {
      // No permission or a broken override: SHA-256 from WebCrypto and node:crypto.
    }
    native = { symbols: loaded };
  }
  return native.symbols;
}

/**
 * The SHA-256 of `bytes` as `sha256:<hex>`, computed on another thread.
 *
 * @param bytes A view; its memory must stay as it is, and mapped, until the promise settles.
 *
 * @example
 * ```ts
 * import { sha256 } from "@packice/packice";
 * console.log(await sha256(new Uint8Array(0)));
 * // sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
 * ```
 */
export async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const lib = symbols();
  if (lib === undefined) {
    return `sha256:${hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))}`;
  }
  if (bytes.length < OFF_THREAD_MIN) {
    return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  }
  if (hashing >= HASH_THREADS) await new Promise<void>((go) => waiting.push(go));
  hashing++;
  let out: Deno.PointerObject | undefined;
  try {
    out = cMemory(lib, 32);
    await lib.pk_sha256_nb(pointerOf(bytes), BigInt(bytes.length), out);
    // Kept alive until the call is done.
    void bytes.length;
    const digest = new Uint8Array(32);
    lib.pk_copy_out(digest, out, 32n);
    return `sha256:${hex(digest)}`;
  } finally {
    if (out !== undefined) lib.pk_free(out);
    hashing--;
    waiting.shift()?.();
  }
}

/** An incremental SHA-256 of a whole object, fed in order. */
export interface WholeHash {
  /**
   * Adds the next bytes. They are read later, in order, off the JS thread:
   * they must stay as they are, and mapped, until {@link WholeHash.settled}.
   */
  update(bytes: Uint8Array): void;
  /** The digest, `sha256:<hex>`, once every update is in; call once. */
  digest(): Promise<string>;
  /** Settles when no update is running or waiting, whatever their outcome. */
  settled(): Promise<void>;
}

/** Starts a {@link WholeHash}. */
export function wholeHash(): WholeHash {
  const lib = symbols();
  if (lib === undefined) {
    const hash = createHash("sha256");
    return {
      update: (bytes) => void hash.update(bytes),
      digest: () => Promise.resolve(`sha256:${hash.digest("hex")}`),
      settled: () => Promise.resolve(),
    };
  }
  const context = new Uint8Array(new ArrayBuffer(lib.pk_sha256_ctx_size()));
  lib.pk_sha256_init(context);
  let chain: Promise<void> = Promise.resolve();
  return {
    update(bytes) {
      if (bytes.length < OFF_THREAD_MIN) {
        chain = chain.then(() => lib.pk_sha256_update(context, bytes, BigInt(bytes.length)));
        return;
      }
      chain = chain.then(async () => {
        const state = cMemory(lib, context.length);
        try {
          lib.pk_copy_in(state, context, BigInt(context.length));
          await lib.pk_sha256_update_nb(state, pointerOf(bytes), BigInt(bytes.length));
          // Kept alive until the call is done.
          void bytes.length;
          lib.pk_copy_out(context, state, BigInt(context.length));
        } finally {
          lib.pk_free(state);
        }
      });
    },
    async digest() {
      await chain;
      const out = new Uint8Array(32);
      lib.pk_sha256_final(context, out);
      return `sha256:${hex(out)}`;
    },
    settled: () => chain.catch(() => {}),
  };
}

/**
 * Memory the library owns, for what a call on the thread pool writes: the
 * runtime frees the memory of JS buffers when it ends (a test module's
 * worker does at the module's end, not waiting for the pool), and a call
 * still running would then write into freed heap, corrupting it.
 */
function cMemory(lib: Native["symbols"], bytes: number): Deno.PointerObject {
  const memory = lib.pk_alloc(BigInt(bytes));
  if (memory === null) throw errnoError(Errno.ENOMEM, "allocating a SHA-256 state");
  return memory;
}

function pointerOf(bytes: Uint8Array): Deno.PointerValue {
  return Deno.UnsafePointer.of(bytes as Uint8Array<ArrayBuffer>);
}

function hex(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += byte.toString(16).padStart(2, "0");
  return text;
}
