/**
 * The test runner ends a module's runtime without waiting for the thread
 * pool, and its op sanitizer does not see FFI calls: a call given JS memory
 * still running then reads and writes freed memory. With
 * PACKICE_WATCH_NATIVE_CALLS=1 (the `test` task's) such a call is named,
 * with where it started, and its module fails.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { loadNative } from "../../native/load.ts";

async function runLeaving(watch: boolean): Promise<{ code: number; output: string }> {
  const fixture = new URL("../helpers/hash_left_running.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    // Type-checked by the gate `deno check tests/**/*.ts`, not again for seconds in the child.
    args: ["test", "--no-check", "--allow-all", fixture],
    env: { PACKICE_WATCH_NATIVE_CALLS: watch ? "1" : "0" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, output: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
}

Deno.test({
  name:
    "a native call on caller memory still running as its test module ends is named, with where it started",
  ignore: loadNative() === undefined,
  async fn() {
    const watched = await runLeaving(true);
    assert(
      /still runs as .*hash_left_running\.ts ends.*pk_sha256_update_nb \(.*\)\n\s+at .*p2p\/sha256\.ts/s
        .test(watched.output),
      watched.output,
    );
    // The module fails, and with it the run.
    assertEquals(watched.code, 1, watched.output);
    assert(watched.output.includes("hash_left_running.ts (uncaught error)"), watched.output);
    const unwatched = await runLeaving(false);
    assertEquals(unwatched.code, 0, unwatched.output);
    assert(!unwatched.output.includes("still runs"), unwatched.output);
  },
});
