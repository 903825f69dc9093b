/** Membership between members in one process, over the in-process network, on the test profile. */
import { ProtocolError } from "../../core/errors.ts";
import { failureDetectionBounds, TEST_PROFILE } from "../../p2p/membership/config.ts";
import type { Member } from "../../p2p/members.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { inProcessCluster } from "./in_process_cluster.ts";

function stateOf(members: readonly Member[], node: string): string | undefined {
  return members.find((m) => m.node === node)?.state;
}

Deno.test("members that join through one see each other alive", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d"]);
  await eventually(
    () => cluster.members.every((m) => m.membership.live().length === 4),
    "every member sees four alive",
    { timeout: 3000 },
  );
  for (const member of cluster.members) {
    assert(member.membership.list().every((m) => m.state === "alive" && m.address !== ""));
  }
});

Deno.test("a killed member is suspected then declared dead within the bound", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d"]);
  await eventually(() => cluster.members.every((m) => m.membership.live().length === 4), "joined");
  const victim = cluster.members[3]!;
  const others = cluster.members.slice(0, 3);
  const started = Date.now();
  await cluster.kill(victim);
  const bound = failureDetectionBounds(TEST_PROFILE, 4);
  await eventually(
    () => others.every((m) => stateOf(m.membership.list(), "d") === "dead"),
    "all see d dead",
    { timeout: bound.dead + 1000 },
  );
  const took = Date.now() - started;
  assert(took <= bound.dead + 1000, `dead after ${took} ms, bound ${bound.dead} ms`);
  for (const member of others) {
    assertEquals(member.membership.live().length, 3);
    assert(member.membership.counters().suspicions + member.membership.counters().deaths > 0);
  }
});

Deno.test("a member that closes is seen as left, not dead", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c"]);
  await eventually(() => cluster.members.every((m) => m.membership.live().length === 3), "joined");
  await cluster.members[2]!.membership.close();
  await eventually(
    () => cluster.members.slice(0, 2).every((m) => stateOf(m.membership.list(), "c") === "left"),
    "all see c left",
    { timeout: 1000 },
  );
});

Deno.test("a paused member refutes the suspicion when it answers again", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d"]);
  await eventually(() => cluster.members.every((m) => m.membership.live().length === 4), "joined");
  const paused = cluster.members[3]!;
  cluster.network.pause(paused.address, true);
  await eventually(
    () => cluster.members.slice(0, 3).some((m) => stateOf(m.membership.list(), "d") === "suspect"),
    "someone suspects d",
    { timeout: 3000 },
  );
  cluster.network.pause(paused.address, false);
  await eventually(
    () => cluster.members.every((m) => stateOf(m.membership.list(), "d") === "alive"),
    "all see d alive again",
    { timeout: 3000 },
  );
  assert(paused.membership.counters().refutations > 0);
});

Deno.test("gossip that is malformed, replayed or misaddressed is refused and counted", async () => {
  await using cluster = await inProcessCluster(["a"]);
  const a = cluster.members[0]!.membership;
  await assertRejects(() => a.handle("ping", { from: "x" }), ProtocolError, "id");
  await assertRejects(
    () => a.handle("gossip", { from: "x", id: "1", updates: [{ kind: "alive", node: "" }] }),
    ProtocolError,
  );
  await assertRejects(
    () => a.handle("ping", { from: "x", to: "someone-else", id: "2", updates: [] }),
    ProtocolError,
    "Misaddressed",
  );
  const ping = { from: "x", to: "a", id: "3", updates: [] };
  await a.handle("ping", ping);
  await assertRejects(() => a.handle("ping", ping), ProtocolError, "Replayed");
  assertEquals(a.counters().rejected, 4);
  assertEquals(a.live().length, 1, "nothing of the refused messages was applied");
});

Deno.test("an overloaded member stretches its own timeouts and declares no healthy member dead", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d", "e"]);
  await eventually(() => cluster.members.every((m) => m.membership.live().length === 5), "joined");
  const slow = cluster.members[4]!;
  // Everything e sends takes longer than a probe may.
  cluster.network.lag(slow.address, TEST_PROFILE.probeTimeout * 1.5);
  const deadline = Date.now() + 3000;
  let worst = 0;
  while (Date.now() < deadline) {
    for (const member of cluster.members) {
      assert(
        member.membership.list().every((m) => m.state !== "dead"),
        `${member.node} saw a death`,
      );
    }
    worst = Math.max(worst, slow.membership.health);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert(worst > 0, "e's local health score rose");
  assert(slow.membership.counters().probeFailures > 0, "e's probes failed");
  cluster.network.lag(slow.address, 0);
});
