/**
 * The native GET listener's sweep of idle connections must not free one
 * whose event waits in the same batch: it was driven afterwards, after
 * free (a double free that glibc aborts on, "double free or corruption",
 * or a heap corrupted quietly). The sweep is every 5 s and the idle time
 * 120 s in the library; a build of its own shortens both, so that the
 * child sees sweeps within seconds.
 */
import { assert, assertEquals } from "../../helpers/assert.ts";
import { loadNative } from "../../../native/load.ts";

const ignore = loadNative() === undefined;

Deno.test({
  name:
    "native GET listener: an idle connection swept while its event waits is not used after free",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "packice-sweep-" });
    try {
      const library = `${dir}/libpackice-sweep.so`;
      const source = new URL("../../../native/packice.c", import.meta.url).pathname;
      const built = await new Deno.Command("cc", {
        args: [
          // Built in a third of -O1's time; the sweep's free before the batch still aborts.
          "-O0",
          "-shared",
          "-fPIC",
          "-DPK_HG_IDLE_S=0",
          "-DPK_HG_SWEEP_MS=1000",
          "-o",
          library,
          source,
        ],
        stderr: "inherit",
      }).output();
      assertEquals(built.code, 0);
      const child = new URL("../../helpers/idle_sweep_child.ts", import.meta.url).pathname;
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-ffi", "--allow-net=127.0.0.1", child, library],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
      assertEquals(code, 0, output);
      // The sweep ran: connections were closed under their clients.
      const closed = Number(/closed (\d+)/.exec(output)?.[1] ?? 0);
      assert(closed > 0, output);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
