/** The native library for tests that call it directly. */
import { symbols } from "../../native/ffi.ts";
import { loadNative } from "../../native/load.ts";
import type { Native } from "../../native/load.ts";

/** The library as the loader finds it, else the local build (for runs with PACKICE_NATIVE_LIB=none). */
export function openNative(): Native | undefined {
  const loaded = loadNative();
  if (loaded) return loaded;
  const local = new URL("../../native/build/libpackice.so", import.meta.url);
  try {
    return { path: local.pathname, symbols: Deno.dlopen(local, symbols).symbols };
  } catch {
    return undefined;
  }
}
