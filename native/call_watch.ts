/**
 * A check for test runs: calls on Deno's thread pool given memory their
 * caller may own (a JS buffer) still running when their runtime ends, and
 * reactor threads still stopping then.
 *
 * The test runner ends a test module's runtime once its last test returns,
 * without waiting for the thread pool, and its op sanitizer does not see FFI
 * calls. That end frees the module's JS buffers: a call still running then
 * reads freed memory (SIGSEGV once unmapped), or writes into it, corrupting
 * the heap of the whole run, which dies later, somewhere else. A reactor
 * thread still stopping may be in a call into the ended runtime, which is
 * never answered: its join then never returns. With
 * `PACKICE_WATCH_NATIVE_CALLS=1` (the `test` task sets it) such a call
 * still running at its runtime's `unload` is named on stderr with where it
 * started, and the module fails: a regression is seen even in a run the
 * race spares.
 *
 * @module
 */
import type { NativeSymbols } from "./ffi.ts";

/** The `_nb` calls given memory their caller may own, and why each must be over. */
const WATCHED = {
  pk_sha256_nb: "the runtime frees that memory now",
  pk_sha256_update_nb: "the runtime frees that memory now",
  pk_blake3_nb: "the runtime frees that memory now",
  pk_http_recv_nb: "the runtime frees that memory now",
  pk_pwrite_all_nb: "the runtime frees that memory now",
  // Not on caller memory: the join of a reactor's thread, which may be in a call into the runtime.
  pk_reactor_join_nb: "the reactor's thread may be in a call the ended runtime never answers",
} as const;

/** The watched calls running now, each named with why it must be over and where it started. */
const running = new Map<number, string>();
let next = 0;
let listening = false;

/**
 * `symbols` with the calls of {@link WATCHED} watched, when
 * `PACKICE_WATCH_NATIVE_CALLS` is `1`; else `symbols` itself.
 */
export function watchedCalls(symbols: NativeSymbols): NativeSymbols {
  if (!watching()) return symbols;
  const watched: Record<string, unknown> = { ...symbols };
  for (const [name, why] of Object.entries(WATCHED)) {
    const call = symbols[name as keyof typeof WATCHED] as (...args: unknown[]) => Promise<unknown>;
    watched[name] = (...args: unknown[]) => {
      const id = next++;
      const where = new Error().stack?.split("\n").slice(2).join("\n") ?? "";
      running.set(id, `${name} (${why})\n${where}`);
      return call(...args).finally(() => running.delete(id));
    };
  }
  if (!listening) {
    listening = true;
    globalThis.addEventListener("unload", () => {
      if (running.size === 0) return;
      for (const call of running.values()) {
        console.error(
          `Packice: a native call still runs as ${Deno.mainModule} ends (await what started it): ` +
            call,
        );
      }
      // Uncaught here, it fails the test module, and the run.
      throw new Error(
        `${running.size} native call(s) still run as ${Deno.mainModule} ends: see above`,
      );
    });
  }
  return watched as NativeSymbols;
}

/**
 * The watched calls running now, each named with why it must be over and
 * where it started: for a test that checks a close leaves none. Always
 * empty unless `PACKICE_WATCH_NATIVE_CALLS` is `1`.
 */
export function nativeCallsRunning(): string[] {
  return [...running.values()];
}

function watching(): boolean {
  try {
    return Deno.env.get("PACKICE_WATCH_NATIVE_CALLS") === "1";
  } catch {
    // No permission to read it: not a test run.
    return false;
  }
}
