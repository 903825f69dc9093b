/**
 * The `build:native` task: compiles `native/packice.c` into
 * `native/build/libpackice.so` with `cc` (or `gcc`), unless the library is
 * newer than the source.
 *
 * @module
 */
import { writeThroughTemporary } from "./write_through_temporary.ts";

const source = new URL("./packice.c", import.meta.url);
const output = new URL("./build/libpackice.so", import.meta.url);
const sourcePath = decodeURIComponent(source.pathname);
const outputPath = decodeURIComponent(output.pathname);

/** The C compilers a build tries, in order: this task's and the build on first use (`load.ts`). */
export const C_COMPILERS: readonly string[] = ["cc", "gcc"];

/** The compiler flags of every build of the library; this task adds warnings. */
export const LIBRARY_FLAGS: readonly string[] = ["-O2", "-shared", "-fPIC"];

/** What {@link buildNative} did. */
export type BuildResult = "built" | "up to date";

/**
 * Compiles the native library when it is missing or older than its source.
 *
 * @param force Build even when the library is up to date.
 * @returns Whether it built.
 * @throws {Error} When no C compiler is found or compilation fails, with the compiler's output.
 *
 * @example
 * ```ts ignore
 * import { buildNative } from "./build.ts";
 * console.log(await buildNative()); // "built" or "up to date"
 * ```
 */
export async function buildNative(force = false): Promise<BuildResult> {
  if (!force && await isUpToDate()) return "up to date";
  await Deno.mkdir(new URL("./build/", import.meta.url), { recursive: true });
  await writeThroughTemporary(outputPath, async (temp) => {
    const failures: string[] = [];
    for (const compiler of C_COMPILERS) {
      let result: Deno.CommandOutput;
      try {
        result = await new Deno.Command(compiler, {
          args: [...LIBRARY_FLAGS, "-Wall", "-Wextra", "-o", temp, sourcePath],
          stdout: "inherit",
          stderr: "piped",
        }).output();
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        failures.push(`${compiler}: not found`);
        continue;
      }
      const messages = new TextDecoder().decode(result.stderr).trim();
      if (!result.success) {
        throw new Error(`Cannot build ${outputPath}: ${compiler} failed:\n${messages}`);
      }
      if (messages) console.error(messages);
      return;
    }
    throw new Error(
      `Cannot build ${outputPath}: no C compiler (${failures.join(", ")}); ` +
        "install gcc, or run with PACKICE_NATIVE_LIB=none to use the pure-TypeScript fallback",
    );
  });
  return "built";
}

async function isUpToDate(): Promise<boolean> {
  try {
    const [built, written] = await Promise.all([Deno.stat(output), Deno.stat(source)]);
    return (built.mtime?.getTime() ?? 0) >= (written.mtime?.getTime() ?? Infinity);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

if (import.meta.main) {
  try {
    const result = await buildNative(Deno.args.includes("--force"));
    console.log(`native/build/libpackice.so: ${result}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  }
}
