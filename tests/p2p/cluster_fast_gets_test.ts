/**
 * Gets over the Unix socket of an embedded cluster's daemons answered in C
 * (the fast path): of an object held here and of a fetched copy, counted as
 * local hits, and never answered once the object was deleted cluster-wide.
 */
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { connect, NotFoundError } from "../../mod.ts";
import { type ClusterDaemon, converged, startCluster } from "./cluster_daemons.ts";

Deno.test("an embedded cluster's daemons answer gets of their objects and copies in C, and stop at a delete", async () => {
  await using cluster = await startCluster(["a", "b"]);
  const [a, b] = cluster.daemons as [ClusterDaemon, ClusterDaemon];
  await converged(cluster.daemons);
  const bytes = pattern(1 << 20, 3);
  await using onA = await connect(a.socket);
  await using onB = await connect(b.socket);
  await onA.put(bytes, { id: "weights", meta: { kind: "model" } });
  await eventually(async () => {
    try {
      (await onB.get("weights")).close(); // fetched on miss: the copy's first read
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false; // not announced yet
      throw error;
    }
  }, "b fetched the object from a");
  for (const [daemon, client] of [[a, onA], [b, onB]] as const) {
    const hits = await daemon.metric("packice_cluster_local_hits_total");
    const native = await daemon.metric("packice_uds_native_open_total");
    for (let i = 0; i < 3; i++) {
      using handle = await client.get("weights");
      assert(sameBytes(handle.bytes, bytes), `bytes on ${daemon.node}`);
      assertEquals(handle.meta, { kind: "model" });
    }
    // The first read teaches C the object, the others are C's own.
    assert(await daemon.metric("packice_uds_native_open_total") >= native + 2, daemon.node);
    assertEquals(await daemon.metric("packice_cluster_local_hits_total"), hits + 3, daemon.node);
  }
  await onA.delete("weights");
  await eventually(async () => {
    try {
      (await onB.get("weights", { local: true })).close();
      return false;
    } catch (error) {
      if (error instanceof NotFoundError) return true;
      throw error;
    }
  }, "b dropped its copy");
  await assertRejects(() => onA.get("weights"), NotFoundError);
  // Put again with other bytes: each daemon reads those, never the deleted ones.
  const other = pattern(1 << 20, 4);
  await onA.put(other, { id: "weights" });
  for (const client of [onA, onB]) {
    using handle = await client.get("weights");
    assert(sameBytes(handle.bytes, other));
  }
});
