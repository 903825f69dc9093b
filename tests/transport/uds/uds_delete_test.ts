/**
 * DELETE, an object deleted in one request: `Client.delete` over a socket
 * sends it alone (no WRITE lease, no memfd handed out), readers holding the
 * object keep their bytes, and a client falls back to ACQUIRE WRITE and
 * DISCARD against a daemon that does not know DELETE.
 */
import { assertEquals, assertRejects } from "../../helpers/assert.ts";
import { udsClient } from "../../helpers/uds_client.ts";
import { MemoryPeer, NotFoundError, UdsServer } from "../../../mod.ts";
import { Op } from "../../../transport/uds/protocol.ts";
import { OldDaemon, served } from "../../helpers/old_daemon.ts";
import { openNative } from "../../helpers/native.ts";

const native = openNative();

/** The server's request counts of the operations a delete may use. */
function requestsOf(server: UdsServer): { delete: number; acquire: number; discard: number } {
  const figures = server.metrics();
  const count = (op: string) => figures[`uds_requests_total{op="${op}"}`] ?? 0;
  return { delete: count("delete"), acquire: count("acquire"), discard: count("discard") };
}

Deno.test({
  name: "a delete over a socket is one DELETE request, and readers keep their bytes",
  ignore: native === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "packice-delete-" });
    await using peer = new MemoryPeer();
    await using server = await UdsServer.listen(peer, `${dir}/s.sock`);
    try {
      await using client = await udsClient(server.path);
      const id = await client.put("going", { id: "d" });
      using held = await client.get(id);
      const before = requestsOf(server);
      await client.delete(id);
      const after = requestsOf(server);
      assertEquals(after.delete - before.delete, 1);
      assertEquals(after.acquire - before.acquire, 0, "no WRITE lease, so no memfd handed out");
      assertEquals(after.discard - before.discard, 0);
      assertEquals(await client.has(id), false);
      assertEquals(new TextDecoder().decode(held.bytes), "going");
      await assertRejects(() => client.delete(id), NotFoundError);
      await assertRejects(() => client.delete("never-was"), NotFoundError);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a client deletes with a WRITE lease against a daemon that does not know DELETE",
  ignore: native === undefined,
  async fn() {
    await using daemon = await served();
    await using client = await udsClient(daemon.path);
    for (const id of ["a", "b", "c"]) await client.put(id, { id });
    const dir = await Deno.makeTempDir({ prefix: "packice-delete-old-" });
    try {
      using old = new OldDaemon(dir, daemon.path, Op.DELETE, `Unknown operation: ${Op.DELETE}`);
      await using oldClient = await udsClient(old.path);
      for (const id of ["a", "b", "c"]) await oldClient.delete(id);
      assertEquals(old.refused.length, 1, "the client stops sending DELETE once refused");
      for (const id of ["a", "b", "c"]) assertEquals(await client.has(id), false);
      await assertRejects(() => oldClient.delete("a"), NotFoundError);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
