/**
 * One id, one content in a cluster on the embedded directory: a put of an
 * id another daemon is creating or holds is refused with ALREADY_EXISTS,
 * where it used to be sealed beside the other content and logged as a
 * CONFLICT.
 */
import { AlreadyExistsError, connect } from "../../mod.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { type ClusterDaemon, converged, startCluster } from "./cluster_daemons.ts";

Deno.test("puts of one id on two daemons at once: one wins, the other gets ALREADY_EXISTS", async () => {
  await using cluster = await startCluster(["a", "b", "c"]);
  await converged(cluster.daemons);
  const [a, b, c] = cluster.daemons as [ClusterDaemon, ClusterDaemon, ClusterDaemon];
  await using one = await connect(a.socket);
  await using two = await connect(b.socket);
  const results = await Promise.allSettled([
    one.put(new Uint8Array(1 << 20).fill(1), { id: "contested" }),
    two.put(new Uint8Array(1 << 20).fill(2), { id: "contested" }),
  ]);
  const won = results.filter((result) => result.status === "fulfilled");
  const lost = results.filter((result) => result.status === "rejected");
  assertEquals(won.length, 1, JSON.stringify(results));
  assertEquals((lost[0] as PromiseRejectedResult).reason.code, "ALREADY_EXISTS");
  // Once held, a put of the id anywhere else is refused too; a get reads the one content.
  await using three = await connect(c.socket);
  await assertRejects(() => three.put("other", { id: "contested" }), AlreadyExistsError);
  using handle = await three.get("contested");
  const winner = results[0]!.status === "fulfilled" ? 1 : 2;
  assertEquals(handle.bytes[0], winner);
  assertEquals([a, b, c].every((daemon) => !daemon.stderr().includes("CONFLICT")), true);
});
