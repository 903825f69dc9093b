/**
 * Two live daemons started with one `--node` take the id from each other
 * for as long as both run: each says so, and what to do. A daemon
 * restarted under its id (the old one killed) is no such conflict.
 */
import { assert } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { type ClusterDaemon, startCluster } from "./cluster_daemons.ts";

const WARNING = "uses node id";

Deno.test("a second live daemon under a member's --node is warned of; a restart under it is not", async () => {
  await using cluster = await startCluster(["a", "b"]);
  const [a, b] = cluster.daemons as [ClusterDaemon, ClusterDaemon];
  // b killed and started again under its id, at another port.
  await b.signal("SIGKILL");
  const restarted = await cluster.add("b");
  await eventually(
    async () => (await a.members()).some((m) => m.node === "b" && m.address === restarted.url),
    "a sees b restarted",
  );
  const twin = await cluster.add("twin", ["--node", "a"]);
  await eventually(
    () => [a, twin].some((daemon) => daemon.stderr().includes(WARNING)),
    "a warning of the two daemons named a",
  );
  assert(!restarted.stderr().includes(WARNING) && !a.stderr().includes("node id b"));
});
