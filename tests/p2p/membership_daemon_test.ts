/**
 * Membership between real daemons on loopback, with `--join` and the test
 * gossip profile: joining, failure detection after SIGKILL, a member paused
 * with SIGSTOP, a clean leave, and gossip that must be refused.
 */
import { failureDetectionBounds, TEST_PROFILE } from "../../p2p/membership/config.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { type ClusterDaemon, converged, startCluster, stateIn, TOKEN } from "./cluster_daemons.ts";

/** Slack for a machine shared with other test processes. */
const SLACK = 2000;

async function allSee(daemons: readonly ClusterDaemon[], node: string, state: string) {
  const views = await Promise.all(daemons.map((d) => d.members()));
  return views.every((members) => stateIn(members, node) === state);
}

Deno.test("daemons that --join see each other alive; a clean shutdown shows left", async () => {
  await using cluster = await startCluster(["a", "b", "c"]);
  await converged(cluster.daemons, 5000);
  const [a, b, c] = cluster.daemons as [ClusterDaemon, ClusterDaemon, ClusterDaemon];
  const listed = await b.members();
  assertEquals(listed.map((m) => m.node).sort(), ["a", "b", "c"]);
  assert(listed.every((m) => m.address.startsWith("http://127.0.0.1:") && m.incarnation >= 1));
  assertEquals(await a.metric('packice_cluster_members{state="alive"}'), 3);
  await c.signal("SIGTERM");
  await eventually(() => allSee([a, b], "c", "left"), "a and b see c left", { timeout: 2000 });
  assertEquals(await a.metric("packice_cluster_deaths_total"), 0);
});

Deno.test("a SIGKILLed daemon is suspected, then dead within the documented bound", async () => {
  await using cluster = await startCluster(["a", "b", "c", "d"]);
  await converged(cluster.daemons, 5000);
  const [victim, ...others] = [...cluster.daemons].reverse() as [ClusterDaemon, ...ClusterDaemon[]];
  const bound = failureDetectionBounds(TEST_PROFILE, 4);
  const started = performance.now();
  await victim.signal("SIGKILL");
  await eventually(() => allSee(others, victim.node, "dead"), "all see the victim dead", {
    timeout: bound.dead + SLACK,
    interval: 50,
  });
  const took = performance.now() - started;
  console.log(`dead in all views after ${Math.round(took)} ms (bound ${bound.dead} ms)`);
  for (const daemon of others) {
    assert(await daemon.metric("packice_cluster_suspicions_total") >= 1, "suspected first");
    assertEquals(await daemon.metric('packice_cluster_members{state="alive"}'), 3);
  }
});

Deno.test("a daemon paused with SIGSTOP refutes and stays; no healthy member is declared dead", async () => {
  await using cluster = await startCluster(["a", "b", "c", "d"]);
  await converged(cluster.daemons, 5000);
  const [a, b, c, d] = cluster.daemons as [
    ClusterDaemon,
    ClusterDaemon,
    ClusterDaemon,
    ClusterDaemon,
  ];
  await d.signal("SIGSTOP");
  await eventually(
    async () => (await a.members()).some((m) => m.node === "d" && m.state !== "alive"),
    "a suspects d",
    { timeout: 3000, interval: 50 },
  );
  await new Promise((resolve) => setTimeout(resolve, 2000));
  await d.signal("SIGCONT");
  await eventually(() => allSee([a, b, c, d], "d", "alive"), "all see d alive again", {
    timeout: 5000,
    interval: 50,
  });
  const view = await a.members();
  assert(view.find((m) => m.node === "d")!.incarnation > 1, "d refuted with a higher incarnation");
  assert(await d.metric("packice_cluster_refutations_total") >= 1);
  // Let d's stalled timers play out, then check nobody healthy was ever declared dead.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (const daemon of [a, b, c, d]) {
    const members = await daemon.members();
    for (const node of ["a", "b", "c"]) assertEquals(stateIn(members, node), "alive", daemon.node);
  }
  assertEquals(await d.metric("packice_cluster_deaths_total"), 0, "d declared no one dead");
});

Deno.test("gossip without the token, malformed or replayed is refused and the daemon lives", async () => {
  await using cluster = await startCluster(["a", "b"]);
  await converged(cluster.daemons, 5000);
  const [a, b] = cluster.daemons as [ClusterDaemon, ClusterDaemon];
  const ping = JSON.stringify({ from: "intruder", to: "a", id: "m1", updates: [] });
  const post = (path: string, body: string, token?: string) =>
    fetch(`${a.url}/v1/cluster/${path}`, {
      method: "POST",
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      body,
    });
  const expect = async (response: Response, status: number, code: string) => {
    const text = await response.text();
    assertEquals(response.status, status, text);
    assertEquals(JSON.parse(text).error.code, code, text);
  };
  await expect(await post("ping", ping), 401, "UNAUTHORIZED");
  await expect(await post("ping", ping, "wrong"), 401, "UNAUTHORIZED");
  await expect(await post("ping", "{not json", TOKEN), 400, "PROTOCOL");
  await expect(await post("ping", "[1,2]", TOKEN), 400, "PROTOCOL");
  await expect(
    await post(
      "gossip",
      JSON.stringify({
        from: "x",
        id: "m2",
        updates: [{ kind: "alive", node: "evil", address: "javascript:alert(1)", incarnation: 1 }],
      }),
      TOKEN,
    ),
    400,
    "PROTOCOL",
  );
  await expect(
    await post("sync", JSON.stringify({ from: "x", id: "m3", join: true, members: "all" }), TOKEN),
    400,
    "PROTOCOL",
  );
  assertEquals((await post("ping", ping, TOKEN)).status, 200);
  await expect(await post("ping", ping, TOKEN), 400, "PROTOCOL"); // replayed
  await expect(
    await post("directory/announce", JSON.stringify({ items: [{ record: 1 }] }), TOKEN),
    400,
    "PROTOCOL",
  );
  await expect(await post("no-such-kind", "{}", TOKEN), 404, "NOT_FOUND");
  // Alive, and nothing of the refused messages was applied.
  assertEquals((await fetch(`${a.url}/healthz`).then((r) => r.json())).status, "ok");
  const members = await a.members();
  assertEquals(members.map((m) => m.node).sort(), ["a", "b"]);
  assert(await a.metric("packice_cluster_gossip_rejected_total") === 4);
  assert(await b.metric('packice_cluster_members{state="alive"}') === 2);
});
