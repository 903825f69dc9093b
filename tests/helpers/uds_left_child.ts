/**
 * Run by tests/transport/uds/uds_teardown_test.ts with `deno test` and
 * `PACKICE_WATCH_NATIVE_CALLS=1`: a Unix socket server whose client has
 * just left closes, and nothing it started may still run then. The
 * client's end, read while the server closes, may remove the last
 * registration of the process's reactor, whose thread then stops: the
 * server's close must not return before it has, else the module's end can
 * tear the runtime down under a call into it.
 */
import { MemoryPeer, UdsPeer, UdsServer } from "../../mod.ts";
import { nativeCallsRunning } from "../../native/call_watch.ts";
import { assertEquals } from "./assert.ts";

Deno.test("a Unix socket server closed as its client leaves leaves no native call running", async () => {
  assertEquals(Deno.env.get("PACKICE_WATCH_NATIVE_CALLS"), "1");
  const dir = Deno.makeTempDirSync({ prefix: "packice-uds-left-" });
  try {
    await using peer = new MemoryPeer();
    // Each round's timing differs: enough rounds that the client's end lands inside the close.
    for (let round = 0; round < 20; round++) {
      const server = await UdsServer.listen(peer, `${dir}/s.sock`, { fastPath: false });
      const client = await UdsPeer.connect(server.path);
      while (server.connections === 0) await new Promise((accepted) => setTimeout(accepted, 1));
      await client.close();
      await server.close();
      assertEquals(nativeCallsRunning(), [], `round ${round}`);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
