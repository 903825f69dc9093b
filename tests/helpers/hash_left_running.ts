/**
 * Run by tests/native/call_watch_test.ts with `deno test`: a test that
 * leaves a SHA-256 running on the thread pool as the module ends. Over
 * memory the library owns, so that it does no harm.
 */
import { loadNative } from "../../native/load.ts";
import { wholeHash } from "../../p2p/sha256.ts";

Deno.test("leaves a hash running", async () => {
  const lib = loadNative()!.symbols;
  const size = 256 << 20;
  const bytes = new Uint8Array(
    Deno.UnsafePointerView.getArrayBuffer(lib.pk_alloc(BigInt(size))!, size),
  );
  wholeHash().update(bytes);
  // The update starts in a microtask.
  await Promise.resolve();
});
