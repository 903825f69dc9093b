/**
 * Child of tests/p2p/sha256_teardown_test.ts. As main module: starts itself
 * as a worker, which begins SHA-256s on the thread pool over memory the
 * library owns (so that reading it stays valid), then ends the worker while
 * they run, as the test runner ends a test module's worker without waiting
 * for the pool; then allocates and frees for a while, and prints
 * `survived`. Whatever those calls write into memory the ended worker owned
 * corrupts the heap under those allocations (glibc aborts).
 */
import { loadNative } from "../../native/load.ts";
import { sha256, wholeHash } from "../../p2p/sha256.ts";

const HASHES = 24;
const BYTES = 32 << 20;

const WORKER = "hasher";

if ((globalThis as { name?: string }).name !== WORKER) {
  const worker = new Worker(import.meta.url, { type: "module", name: WORKER });
  await new Promise((started) => worker.onmessage = started);
  worker.terminate();
  const until = performance.now() + 1500;
  const kept: Uint8Array[] = [];
  while (performance.now() < until) {
    for (let i = 0; i < 200; i++) kept.push(new Uint8Array(new ArrayBuffer(16 + (i % 16) * 16)));
    if (kept.length > 20_000) kept.splice(0, 10_000);
    await new Promise((next) => setTimeout(next, 1));
  }
  console.log("survived");
} else {
  const lib = loadNative()!.symbols;
  const bytes = new Uint8Array(
    Deno.UnsafePointerView.getArrayBuffer(lib.pk_alloc(BigInt(BYTES))!, BYTES),
  );
  for (let i = 0; i < HASHES; i++) wholeHash().update(bytes);
  sha256(bytes);
  sha256(bytes);
  // The updates start in a microtask; the parent hears once they have.
  setTimeout(() => (self as unknown as Worker).postMessage("started"), 0);
}
