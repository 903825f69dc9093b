/**
 * A SHA-256 on the thread pool may outlive the runtime that started it: the
 * test runner ends a test module's worker once its last test returns, and
 * a test that leaves a hash running (an `Assembly`'s whole hash, fed as
 * pieces verify) did. The worker's end frees the memory of its JS buffers;
 * the hash state and digest were such buffers, which the call went on
 * writing: a heap corrupted under the runner ("corrupted double-linked
 * list", "corrupted size vs. prev_size", SIGSEGV), which killed whole test
 * runs. They are memory the library owns now.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { loadNative } from "../../native/load.ts";

Deno.test({
  name: "SHA-256s still running when their worker ends write no memory it freed",
  ignore: loadNative() === undefined,
  async fn() {
    const child = new URL("../helpers/hash_teardown_child.ts", import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", child],
      // glibc checks its heap on each call: a corruption shows at once.
      env: { GLIBC_TUNABLES: "glibc.malloc.check=3:glibc.malloc.perturb=165" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assertEquals(code, 0, output);
    assert(output.includes("survived"), output);
  },
});
