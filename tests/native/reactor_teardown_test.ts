/**
 * A runtime that ends with registrations left on its reactor leaves the
 * process running: nothing calls into it once it has gone. A Worker's
 * runtime is told nothing before it ends (no `unload`); a test module's is.
 * Each is run in a child process, which such a call used to kill (SIGSEGV,
 * or an abort on a corrupted heap).
 */
import { loadNative } from "../../native/load.ts";
import { assertEquals } from "../helpers/assert.ts";

async function run(args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, output: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
}

const helper = (name: string) => new URL(`../helpers/${name}`, import.meta.url).pathname;

Deno.test({
  name: "Workers ended with registrations left on their reactors leave the process running",
  ignore: loadNative() === undefined,
  async fn() {
    const { code, output } = await run(["run", "--allow-all", helper("reactor_worker_child.ts")]);
    assertEquals([code, output.includes("survived")], [0, true], output);
  },
});

Deno.test({
  name: "a test module ended with a registration left on its reactor leaves the run going",
  ignore: loadNative() === undefined,
  async fn() {
    const { code, output } = await run([
      "test",
      "--allow-all",
      "--parallel",
      helper("reactor_left_child.ts"),
      helper("outlasting_child.ts"),
    ]);
    assertEquals(code, 0, output);
  },
});
