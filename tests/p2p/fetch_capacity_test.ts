/**
 * A get of an object another member holds that is larger than this daemon
 * can hold fails with `CAPACITY_EXCEEDED`, saying what to raise: the object
 * exists, so never `NOT_FOUND`.
 */
import { CapacityExceededError, connect } from "../../mod.ts";
import { assert, assertRejects } from "../helpers/assert.ts";
import { type ClusterDaemon, startCluster } from "./cluster_daemons.ts";

Deno.test("a get of an object larger than this daemon holds is CAPACITY_EXCEEDED, not NOT_FOUND", async () => {
  await using cluster = await startCluster(["a"]);
  const [a] = cluster.daemons as [ClusterDaemon];
  const small = await cluster.add("small", ["--capacity", "1MiB"]);
  await using atA = await connect(a.socket);
  await atA.put(new Uint8Array(2 << 20), { id: "large" });
  await using atSmall = await connect(small.socket);
  const error = await assertRejects(() => atSmall.get("large"), CapacityExceededError);
  assert(error.message.includes("raise --capacity"), error.message);
});
