/**
 * Run by tests/backends/fs/native_io_teardown_test.ts with `deno test` and
 * `PACKICE_WATCH_NATIVE_CALLS=1`: a file store on the native I/O threads
 * writes a blob and closes, and nothing it started may still run then. The
 * process's reactor watches the threads' results while jobs are under way;
 * the stop of its thread, once unwatched, must be over when the close
 * returns, else the module's end can tear the runtime down under a call.
 */
import { NativeFileIo } from "../../backends/fs/native_io.ts";
import { FileBlobStore } from "../../backends/fs/file_blob_store.ts";
import { nativeCallsRunning } from "../../native/call_watch.ts";
import { loadNative } from "../../native/load.ts";
import { assertEquals } from "./assert.ts";

Deno.test("a file store on the native I/O threads leaves no native call running once closed", async () => {
  assertEquals(Deno.env.get("PACKICE_WATCH_NATIVE_CALLS"), "1");
  const dir = Deno.makeTempDirSync({ prefix: "packice-native-io-" });
  try {
    const store = new FileBlobStore({
      dir,
      capacity: 1 << 20,
      files: NativeFileIo.of(loadNative()!).opener(),
    });
    const stored = await store.allocate({
      id: "left",
      state: "CREATING",
      size: 4096,
      blobSizes: [4096],
      meta: {},
      createdAt: Date.now(),
    });
    await stored.blobs[0]!.write(0, new Uint8Array(4096).fill(7));
    await store.close();
    assertEquals(nativeCallsRunning(), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
