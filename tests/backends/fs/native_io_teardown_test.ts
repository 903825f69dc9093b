/**
 * A store's close awaits the end of the reactor's watch of the native I/O
 * threads: the test runner tears a module's runtime down once its last test
 * returns, and a reactor thread still stopping then may call into it
 * (SIGSEGV in the runner). Checked in a child run with the call watch on.
 */
import { assert } from "../../helpers/assert.ts";
import { runWatched } from "../../helpers/watched_run.ts";
import { loadNative } from "../../../native/load.ts";

Deno.test({
  name:
    "FileBlobStore.close() on the native I/O threads returns once the reactor's watch has ended",
  ignore: loadNative() === undefined,
  async fn() {
    const output = await runWatched(
      new URL("../../helpers/native_io_left_child.ts", import.meta.url),
    );
    assert(!output.includes("still runs"), output);
  },
});
