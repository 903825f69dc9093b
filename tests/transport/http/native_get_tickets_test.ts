/**
 * The native GET listener keeps the numbers of tickets done until JS
 * collects them (pk_hg_done), in room it makes when a ticket is handed out.
 * That room counted the live tickets only, not those done and not yet
 * collected: with the wait for them late (a busy thread pool), tickets
 * handed out and sent one after another wrote past its end, a heap
 * overflow (SIGSEGV, or a heap corrupted quietly).
 */
import { assertEquals } from "../../helpers/assert.ts";
import { loadNative } from "../../../native/load.ts";

const ignore = loadNative() === undefined;

Deno.test({
  name:
    "native GET listener: tickets done and not yet collected, hundreds of them, overflow nothing",
  ignore,
  async fn() {
    const child = new URL("../../helpers/tickets_done_child.ts", import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-ffi", "--allow-read", "--allow-env", "--allow-net=127.0.0.1", child],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assertEquals(code, 0, output);
    assertEquals(/done (\d+)/.exec(output)?.[1], "300", output);
  },
});
