/**
 * The `compile` task: builds a standalone `./packice` binary from `cli.ts`
 * with `deno compile`, embedding `native/build/libpackice.so` (the loader
 * copies it out to the cache directory before dlopen). `deno compile`
 * downloads a `denort` runtime unless `DENORT_BIN` names a local one; the
 * environment is passed through as it is.
 *
 * @module
 */

const root = new URL("../", import.meta.url);
const library = "native/build/libpackice.so";

/**
 * The permissions of the binary: those of the `start` task, read from
 * deno.json so that the two never differ.
 */
async function startPermissions(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const task: string = config.tasks.start;
  return task.split(/\s+/).filter((word) => word.startsWith("--allow-"));
}

/**
 * Runs `deno compile` for `cli.ts` into `./packice`.
 *
 * @returns Whether it succeeded; deno's own output goes to the terminal.
 *
 * @example
 * ```ts ignore
 * import { compileBinary } from "./compile.ts";
 * if (!(await compileBinary())) Deno.exit(1);
 * ```
 */
export async function compileBinary(): Promise<boolean> {
  try {
    await Deno.stat(new URL(library, root));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    console.error(`Cannot compile: ${library} is missing; run \`deno task build:native\` first`);
    return false;
  }
  const args = [
    "compile",
    ...await startPermissions(),
    "--include",
    library,
    "--output",
    "packice",
    "cli.ts",
  ];
  const { code } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: decodeURIComponent(root.pathname),
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code === 0) {
    console.log("Compiled ./packice");
    return true;
  }
  const hint = Deno.env.get("DENORT_BIN")
    ? `check that DENORT_BIN (${
      Deno.env.get("DENORT_BIN")
    }) is a denort binary of Deno ${Deno.version.deno}`
    : "if it could not download the denort runtime, set DENORT_BIN to a local denort binary";
  console.error(`Cannot compile ./packice: deno compile exited with code ${code}; ${hint}`);
  return false;
}

if (import.meta.main && !(await compileBinary())) Deno.exit(1);
