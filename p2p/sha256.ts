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
import {
  cMemory,
  hashOffThread,
  hashSymbols,
  hex,
  OFF_THREAD_MIN,
  pointerOf,
} from "./hash_threads.ts";

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
  const lib = hashSymbols();
  if (lib === undefined) {
    return `sha256:${hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))}`;
  }
  if (bytes.length < OFF_THREAD_MIN) {
    return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  }
  return `sha256:${await hashOffThread(bytes, lib.pk_sha256_nb)}`;
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
  const lib = hashSymbols();
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
