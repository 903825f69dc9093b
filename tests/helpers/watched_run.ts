/** Runs a test module in a child `deno test` with the native call watch on (native/call_watch.ts). */
import { assertEquals } from "./assert.ts";

/**
 * Runs `fixture` with `deno test` and `PACKICE_WATCH_NATIVE_CALLS=1`, and
 * returns its output; throws with the output when the run fails.
 */
export async function runWatched(fixture: URL): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    // The fixtures are type-checked by the gate `deno check tests/**/*.ts`; checked here, the
    // child's whole graph would be again, for seconds of the suite (CI: 14 s).
    args: ["test", "--no-check", "--allow-all", fixture.pathname],
    env: { PACKICE_WATCH_NATIVE_CALLS: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assertEquals(code, 0, output);
  return output;
}
