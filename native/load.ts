/**
 * Finds, builds if needed, and opens `libpackice.so`.
 *
 * Order: the `PACKICE_NATIVE_LIB` environment variable (a path; `""` or
 * `"none"` turns the library off), the local build `native/build/libpackice.so`
 * (copied to the cache first when it is embedded in a `deno compile` binary,
 * which dlopen cannot read), the per-version cache
 * `$XDG_CACHE_HOME/packice/<version>/libpackice.so` (or `~/.cache/...`), and
 * last a build of `packice.c` into that cache with `cc`. When none works, one
 * warning says that zero-copy sharing between processes is unavailable.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { NativeUnavailableError } from "../core/errors.ts";
import { C_COMPILERS, LIBRARY_FLAGS } from "./build.ts";
import { watchedCalls } from "./call_watch.ts";
import { NATIVE_ABI_VERSION, symbols } from "./ffi.ts";
import { writeThroughTemporarySync } from "./write_through_temporary.ts";
import type { NativeSymbols } from "./ffi.ts";

/** An opened native library. */
export interface Native {
  /** Where the library was loaded from. */
  readonly path: string;
  /** Its functions. */
  readonly symbols: NativeSymbols;
}

const LIBRARY_NAME = "libpackice.so";
const sourceUrl = new URL("./packice.c", import.meta.url);
const localUrl = new URL(`./build/${LIBRARY_NAME}`, import.meta.url);

/** Set once the outcome is known: the library, or undefined for the fallback. */
let settled: { native: Native | undefined } | undefined;
/** The running {@link ensureNative}, shared by concurrent callers. */
let ensuring: Promise<Native | undefined> | undefined;

/**
 * Returns the native library, loading it on first use, or undefined (after
 * one console warning) when it is unavailable or turned off with
 * `PACKICE_NATIVE_LIB=none`. The outcome is kept for the process.
 * Synchronous: it builds the library only from a local source file, so when
 * this module was loaded over the network, {@link ensureNative} runs first
 * (`connect()`, `UdsPeer.connect` and `UdsServer.listen` call it), which
 * fetches the source to build it.
 *
 * @returns The library, or undefined.
 * @throws {NativeUnavailableError} When `PACKICE_NATIVE_LIB` names a library that does not load.
 * @throws {Deno.errors.NotCapable} When a permission it needs is missing.
 *
 * @example
 * ```ts ignore
 * import { loadNative } from "./load.ts";
 * const native = loadNative();
 * console.log(native ? `native: ${native.path}` : "pure TypeScript");
 * ```
 */
export function loadNative(): Native | undefined {
  if (settled) return settled.native;
  const found = findExisting();
  if (found !== "missing") return settle(found);
  if (sourceUrl.protocol !== "file:") {
    return settle(warnUnavailable(
      `${sourceUrl} is remote and cannot be fetched synchronously: connect() fetches it, or await ensureNative() first`,
    ));
  }
  let source: string | Error;
  try {
    source = Deno.readTextFileSync(sourceUrl);
  } catch (error) {
    rethrowPermission(error);
    source = new Error(`Cannot read ${sourceUrl}: ${messageOf(error)}`, { cause: error });
  }
  return settle(buildFrom(source));
}

/**
 * Like {@link loadNative}, but also fetches the C source when this module was
 * loaded over the network, so a library can be built for any module URL.
 *
 * @returns The library, or undefined when it is unavailable.
 * @throws {NativeUnavailableError} When `PACKICE_NATIVE_LIB` names a library that does not load.
 * @throws {Deno.errors.NotCapable} When a permission it needs is missing.
 *
 * @example
 * ```ts ignore
 * import { ensureNative } from "./load.ts";
 * const native = await ensureNative();
 * ```
 */
export function ensureNative(): Promise<Native | undefined> {
  if (settled) return Promise.resolve(settled.native);
  ensuring ??= ensure();
  return ensuring;
}

async function ensure(): Promise<Native | undefined> {
  const found = findExisting();
  if (found !== "missing") return settle(found);
  let source: string | Error;
  try {
    const response = await fetch(sourceUrl);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    source = await response.text();
  } catch (error) {
    rethrowPermission(error);
    source = new Error(`Cannot read ${sourceUrl}: ${messageOf(error)}`, { cause: error });
  }
  // A synchronous loadNative() may have decided while the source was fetched.
  if (settled) return settled.native;
  return settle(buildFrom(source));
}

/** The library, undefined when it is off, "missing" when nothing usable exists yet. */
function findExisting(): Native | undefined | "missing" {
  const override = Deno.env.get("PACKICE_NATIVE_LIB");
  if (override !== undefined) {
    if (override === "" || override === "none") {
      return warnUnavailable("the native library is turned off with PACKICE_NATIVE_LIB");
    }
    try {
      return open(override);
    } catch (error) {
      rethrowPermission(error);
      throw new NativeUnavailableError(
        `Cannot load native library from PACKICE_NATIVE_LIB: ${override}: ${messageOf(error)}`,
        { cause: error },
      );
    }
  }
  if (Deno.build.os !== "linux") return warnUnavailable(`it needs Linux, not ${Deno.build.os}`);
  if (localUrl.protocol === "file:") {
    const local = tryOpenLocal();
    if (local) return local;
  }
  const cached = cachedPath();
  if (cached !== undefined && exists(cached)) {
    const native = tryOpen(cached);
    if (native) return native;
  }
  return "missing";
}

/** The local build, or its bytes copied to the cache when dlopen cannot read it in place. */
function tryOpenLocal(): Native | undefined {
  if (!exists(localUrl)) return undefined;
  const native = tryOpen(localUrl);
  if (native) return native;
  // In a `deno compile` binary the file lives in a virtual file system that
  // Deno.readFileSync can read but dlopen cannot. Without a cache directory
  // (a service without HOME), a temporary one holds the copy.
  try {
    const cached = cachedPath() ??
      `${Deno.makeTempDirSync({ prefix: "packice-" })}/${LIBRARY_NAME}`;
    const bytes = Deno.readFileSync(localUrl);
    if (!exists(cached) || !sameBytes(Deno.readFileSync(cached), bytes)) {
      writeAtomically(cached, (temp) => Deno.writeFileSync(temp, bytes));
    }
    return tryOpen(cached);
  } catch (error) {
    rethrowPermission(error);
    return undefined;
  }
}

/** Builds the library into the cache from its C source, or warns and returns undefined. */
function buildFrom(source: string | Error): Native | undefined {
  if (source instanceof Error) return warnUnavailable(source.message);
  const cached = cachedPath();
  if (cached === undefined) {
    return warnUnavailable("no cache directory to build in: set XDG_CACHE_HOME or HOME");
  }
  try {
    writeAtomically(cached, (temp) => compile(source, temp));
    return open(cached);
  } catch (error) {
    rethrowPermission(error);
    return warnUnavailable(messageOf(error));
  }
}

/** Compiles C source to a shared library with the first C compiler found. */
function compile(source: string, output: string): void {
  const sourcePath = `${output}.c`;
  Deno.writeTextFileSync(sourcePath, source);
  try {
    const failures: string[] = [];
    for (const compiler of C_COMPILERS) {
      let result: Deno.CommandOutput;
      try {
        result = new Deno.Command(compiler, {
          args: [...LIBRARY_FLAGS, "-o", output, sourcePath],
          stdout: "null",
          stderr: "piped",
        }).outputSync();
      } catch (error) {
        rethrowPermission(error);
        failures.push(`${compiler}: ${messageOf(error)}`);
        continue;
      }
      if (result.success) return;
      failures.push(`${compiler}: ${new TextDecoder().decode(result.stderr).trim()}`);
    }
    throw new Error(`Cannot compile ${LIBRARY_NAME}: ${failures.join("; ")}`);
  } finally {
    Deno.removeSync(sourcePath);
  }
}

/** Writes a file whole or not at all, in a directory made if needed. */
function writeAtomically(path: string, write: (temp: string) => void): void {
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  writeThroughTemporarySync(path, write);
}

function open(location: string | URL): Native {
  const path = location instanceof URL ? decodeURIComponent(location.pathname) : location;
  const library = Deno.dlopen(location, symbols);
  const version = library.symbols.pk_version();
  if (version !== NATIVE_ABI_VERSION) {
    library.close();
    throw new Error(`${path} has ABI version ${version}, expected ${NATIVE_ABI_VERSION}`);
  }
  // `_nb` calls may still run when the runtime closes the library at exit.
  if (library.symbols.pk_pin() < 0) {
    library.close();
    throw new Error(`${path} cannot be pinned in memory`);
  }
  // A write into a sealed object's read-only mapping cannot be caught: it is
  // made to say why before it ends the process. Best effort.
  library.symbols.pk_report_sealed_writes();
  return { path, symbols: watchedCalls(library.symbols) };
}

/** Opens a candidate, or returns undefined when it does not load (a stale or foreign build). */
function tryOpen(location: string | URL): Native | undefined {
  try {
    return open(location);
  } catch (error) {
    rethrowPermission(error);
    return undefined;
  }
}

/** `<cache>/packice/<version>/libpackice.so`, or undefined when there is no cache directory. */
function cachedPath(): string | undefined {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME");
  const base = xdg ? xdg : home ? `${home}/.cache` : undefined;
  return base === undefined ? undefined : `${base}/packice/${denoJson.version}/${LIBRARY_NAME}`;
}

function exists(path: string | URL): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function settle(native: Native | undefined): Native | undefined {
  settled = { native };
  return native;
}

function warnUnavailable(reason: string): undefined {
  console.warn(`Packice: zero-copy sharing between processes is unavailable: ${reason}`);
  return undefined;
}

function rethrowPermission(error: unknown): void {
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    throw error;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
