/**
 * The `build:native` task: compiles `native/packice.c` into
 * `native/build/libpackice.so` with `cc` (or `gcc`), unless the library is
 * newer than the source. With `--sanitize=address` (or
 * `PACKICE_NATIVE_SANITIZE=address`) it builds an AddressSanitizer library
 * into `native/build/libpackice-asan.so` instead, for `deno task test:asan`.
 *
 * @module
 */
import { writeThroughTemporary } from "./write_through_temporary.ts";

const source = new URL("./packice.c", import.meta.url);
const sourcePath = decodeURIComponent(source.pathname);

/** The C compilers a build tries, in order: this task's and the build on first use (`load.ts`). */
export const C_COMPILERS: readonly string[] = ["cc", "gcc"];

/** The compiler flags of every build of the library; this task adds warnings. */
export const LIBRARY_FLAGS: readonly string[] = ["-O2", "-shared", "-fPIC"];

/**
 * The flags of the AddressSanitizer build: frames kept for its reports, and
 * little inlining, so that a report names the line that went wrong.
 */
export const ASAN_FLAGS: readonly string[] = [
  "-O1",
  "-g",
  "-fsanitize=address",
  "-fno-omit-frame-pointer",
  "-shared",
  "-fPIC",
];

/** Which library a build makes: the ordinary one, or one instrumented by AddressSanitizer. */
export type BuildKind = "release" | "address";

/** What {@link buildNative} did. */
export type BuildResult = "built" | "up to date";

/** Where the build of `kind` goes. */
export function libraryPath(kind: BuildKind = "release"): string {
  const name = kind === "address" ? "libpackice-asan.so" : "libpackice.so";
  return decodeURIComponent(new URL(`./build/${name}`, import.meta.url).pathname);
}

/**
 * Compiles the native library when it is missing or older than its source.
 *
 * @param force Build even when the library is up to date.
 * @param kind The ordinary library, or the AddressSanitizer one ({@link libraryPath}).
 * @returns Whether it built.
 * @throws {Error} When no C compiler is found or compilation fails, with the compiler's output.
 *
 * @example
 * ```ts ignore
 * import { buildNative } from "./build.ts";
 * console.log(await buildNative()); // "built" or "up to date"
 * ```
 */
export async function buildNative(
  force = false,
  kind: BuildKind = "release",
): Promise<BuildResult> {
  const outputPath = libraryPath(kind);
  if (!force && await isUpToDate(outputPath)) return "up to date";
  await Deno.mkdir(new URL("./build/", import.meta.url), { recursive: true });
  await writeThroughTemporary(outputPath, async (temp) => {
    const failures: string[] = [];
    for (const compiler of C_COMPILERS) {
      let result: Deno.CommandOutput;
      try {
        result = await new Deno.Command(compiler, {
          args: [
            ...(kind === "address" ? ASAN_FLAGS : LIBRARY_FLAGS),
            "-Wall",
            "-Wextra",
            "-o",
            temp,
            sourcePath,
          ],
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

async function isUpToDate(outputPath: string): Promise<boolean> {
  try {
    const [built, written] = await Promise.all([Deno.stat(outputPath), Deno.stat(source)]);
    return (built.mtime?.getTime() ?? 0) >= (written.mtime?.getTime() ?? Infinity);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

if (import.meta.main) {
  try {
    const sanitize = Deno.args.find((arg) => arg.startsWith("--sanitize="))?.slice(11) ??
      Deno.env.get("PACKICE_NATIVE_SANITIZE") ?? "";
    if (sanitize !== "" && sanitize !== "address") {
      throw new Error(`Cannot build with sanitizer ${sanitize}: only "address" is supported`);
    }
    const kind: BuildKind = sanitize === "address" ? "address" : "release";
    const result = await buildNative(Deno.args.includes("--force"), kind);
    console.log(`${libraryPath(kind).replace(`${Deno.cwd()}/`, "")}: ${result}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  }
}
