/**
 * A Unix socket server's close awaits the stop of the reactor's thread that
 * the end of a client's connection started: the test runner tears a
 * module's runtime down once its last test returns, and a reactor thread
 * still stopping then may call into it (SIGSEGV in the runner). Checked in a
 * child run with the call watch on.
 */
import { assert } from "../../helpers/assert.ts";
import { runWatched } from "../../helpers/watched_run.ts";
import { loadNative } from "../../../native/load.ts";

Deno.test({
  name:
    "UdsServer.close() returns once the connections that ended on their own have let go of the reactor",
  ignore: loadNative() === undefined,
  async fn() {
    const output = await runWatched(new URL("../../helpers/uds_left_child.ts", import.meta.url));
    assert(!output.includes("still runs"), output);
  },
});
