/**
 * The report of writes into sealed objects (`pk_report_sealed_writes`) is
 * installed once per process even when runtimes load the library at once:
 * installed twice, it took itself for the SIGSEGV handler before it, and a
 * fault of any other kind (a WebAssembly trap, a stack overflow) then spun
 * forever instead of reaching that handler (1 in about 100 of the rounds
 * below).
 */
import { loadNative } from "../../native/load.ts";
import { assertEquals } from "../helpers/assert.ts";

const native = loadNative();

Deno.test({
  name: "the sealed-write report installed by threads at once hands other faults on",
  ignore: native === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "packice-segv-race-" });
    try {
      const race = `${dir}/segv_install_race`;
      const source = new URL("../helpers/segv_install_race.c", import.meta.url).pathname;
      const built = await new Deno.Command("cc", {
        args: ["-O2", "-pthread", "-o", race, source, "-ldl"],
        stderr: "inherit",
      }).output();
      assertEquals(built.code, 0);
      const { code, stdout } = await new Deno.Command(race, {
        args: [native!.path, "1000"],
        stdout: "piped",
      }).output();
      assertEquals([code, new TextDecoder().decode(stdout).trim()], [0, "lost 0 of 1000"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
