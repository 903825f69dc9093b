/**
 * A user's mistakes when starting members, each said with what to do: two
 * live daemons started with one `--node` take the id from each other for as
 * long as both run (a daemon restarted under its id, the old one killed, is
 * no such conflict); a daemon with another token than the cluster's cannot join.
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

Deno.test("a daemon with another token than the cluster's says why it cannot join", async () => {
  await using cluster = await startCluster(["a"]);
  const stranger = await cluster.add("stranger", ["--token", "not-the-cluster-token"]);
  await eventually(
    () => stranger.stderr().includes("every member needs the same token"),
    "the join failure names the token",
  );
});
