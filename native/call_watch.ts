/**
 * A check for test runs: calls on Deno's thread pool given memory their
 * caller may own (a JS buffer) still running when their runtime ends.
 *
 * The test runner ends a test module's runtime once its last test returns,
 * without waiting for the thread pool, and its op sanitizer does not see FFI
 * calls. That end frees the module's JS buffers: a call still running then
 * reads freed memory (SIGSEGV once unmapped), or writes into it, corrupting
 * the heap of the whole run, which dies later, somewhere else. With
 * `PACKICE_WATCH_NATIVE_CALLS=1` (the `test` task sets it) such a call
 * still running at its runtime's `unload` is named on stderr with where it
 * started: the line before a dead run says which test left it.
 *
 * @module
 */
import type { NativeSymbols } from "./ffi.ts";

/** The `_nb` calls given memory their caller may own. */
const CALLER_MEMORY = [
  "pk_sha256_nb",
  "pk_sha256_update_nb",
  "pk_blake3_nb",
  "pk_http_recv_nb",
  "pk_pwrite_all_nb",
] as const;

/**
 * `symbols` with the calls given memory their caller may own watched, when
 * `PACKICE_WATCH_NATIVE_CALLS` is `1`; else `symbols` itself.
 */
export function watchedCalls(symbols: NativeSymbols): NativeSymbols {
  if (!watching()) return symbols;
  const running = new Map<number, string>();
  let next = 0;
  const watched: Record<string, unknown> = { ...symbols };
  for (const name of CALLER_MEMORY) {
    const call = symbols[name] as (...args: unknown[]) => Promise<unknown>;
    watched[name] = (...args: unknown[]) => {
      const id = next++;
      const where = new Error().stack?.split("\n").slice(2).join("\n") ?? "";
      running.set(id, `${name}\n${where}`);
      return call(...args).finally(() => running.delete(id));
    };
  }
  globalThis.addEventListener("unload", () => {
    for (const call of running.values()) {
      console.error(
        `Packice: a native call on memory JS may own still runs as ${Deno.mainModule} ends ` +
          `(await it: the runtime frees that memory now): ${call}`,
      );
    }
  });
  return watched as NativeSymbols;
}

function watching(): boolean {
  try {
    return Deno.env.get("PACKICE_WATCH_NATIVE_CALLS") === "1";
  } catch {
    // No permission to read it: not a test run.
    return false;
  }
}
