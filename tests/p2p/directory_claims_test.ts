/**
 * Claims, the exclusive CREATE a read-through downloads under: in the
 * embedded directory (between members in one process) and in Redis (one
 * server, and a Redis Cluster).
 */
import { InProcessNetwork } from "../../p2p/cluster_transport.ts";
import { EmbeddedDirectory } from "../../p2p/directory/embedded.ts";
import { owners } from "../../p2p/directory/rendezvous.ts";
import type { Members } from "../../p2p/members.ts";
import { TEST_PROFILE } from "../../p2p/membership/config.ts";
import { RedisDirectory } from "../../p2p/directory/redis.ts";
import type { Directory, Holder } from "../../p2p/directory.ts";
import { ProtocolError, StoreUnavailableError } from "../../core/errors.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { startRedisCluster } from "../helpers/redis_cluster.ts";
import {
  type InProcessCluster,
  inProcessCluster,
  type InProcessMember,
} from "./in_process_cluster.ts";

const holder = (node: string): Holder => ({
  node,
  address: `http://127.0.0.1:${1000 + node.charCodeAt(0)}`,
});

/** Many claimants at once: exactly one is granted, all agree on it; renewals and expiry. */
async function claimRules(
  directories: readonly Directory[],
  nodes: readonly string[],
  key: string,
): Promise<void> {
  const winners = await Promise.all(
    directories.map((directory, i) => directory.claim!(key, holder(nodes[i]!), 400)),
  );
  const winner = winners[0]!.node;
  assertEquals(new Set(winners.map((w) => w.node)).size, 1, JSON.stringify(winners));
  const w = nodes.indexOf(winner);
  // Its holder renews; the others still see it.
  assertEquals((await directories[w]!.claim!(key, holder(winner), 400)).node, winner);
  const other = (w + 1) % nodes.length;
  assertEquals((await directories[other]!.claim!(key, holder(nodes[other]!), 400)).node, winner);
  // Let go: the next claimant gets it.
  await directories[w]!.unclaim!(key, nodes[other]!); // not the holder: a no-op
  assertEquals((await directories[other]!.claim!(key, holder(nodes[other]!), 400)).node, winner);
  await directories[w]!.unclaim!(key, winner);
  assertEquals(
    (await directories[other]!.claim!(key, holder(nodes[other]!), 300)).node,
    nodes[other],
  );
  // Not renewed: it expires.
  await new Promise((resolve) => setTimeout(resolve, 450));
  assertEquals((await directories[w]!.claim!(key, holder(winner), 300)).node, winner);
  await directories[w]!.unclaim!(key, winner);
}

async function joined(members: InProcessMember[]): Promise<void> {
  await eventually(
    () => members.every((m) => m.membership.live().length === members.length),
    "every member sees every other",
  );
}

Deno.test("embedded claims: one claimant of many, renewals, release, expiry", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d"]);
  await joined(cluster.members);
  await claimRules(cluster.members.map((m) => m.directory), ["a", "b", "c", "d"], "origin-x");
  await assertRejects(
    () => cluster.members[0]!.directory.handle("claim", { key: "k", holder: {}, ttl: 5 }),
    ProtocolError,
  );
});

Deno.test("embedded claims: a claim outlives its deciding owner; a dead holder's claim goes", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d", "e"]);
  await joined(cluster.members);
  const nodes = cluster.members.map((m) => m.node);
  // A key whose deciding owner is neither the claimant nor the later claimant.
  const key = Array.from({ length: 200 }, (_, i) => `origin-${i}`).find((id) => {
    const [first] = owners(id, nodes, 2);
    return first !== "a" && first !== "b";
  })!;
  const [primary] = owners(key, nodes, 2);
  const byNode = new Map(cluster.members.map((m) => [m.node, m]));
  const a = byNode.get("a")!;
  const b = byNode.get("b")!;
  assertEquals((await a.directory.claim(key, holder("a"), 60_000)).node, "a");
  await cluster.kill(byNode.get(primary!)!);
  await eventually(
    () => b.membership.list().find((m) => m.node === primary)?.state === "dead",
    "b sees the owner dead",
    { timeout: 5000 },
  );
  // The next owner had a copy: a still holds it.
  assertEquals((await b.directory.claim(key, holder("b"), 60_000)).node, "a");
  // a dies: its claim goes as soon as the owners learn it, long before it would expire.
  await cluster.kill(a);
  await eventually(
    async () => (await b.directory.claim(key, holder("b"), 60_000)).node === "b",
    "b takes the claim of dead a",
    { timeout: 6000, interval: 50 },
  );
});

/** Stalls `member` as SIGSTOP would, or resumes it: nothing reaches it, nothing it sends arrives. */
function stall(cluster: InProcessCluster, member: InProcessMember, stalled: boolean): void {
  cluster.network.pause(member.address, stalled);
  cluster.network.lag(member.address, stalled ? 3_600_000 : 0);
}

/** Claims as a read-through does, again after a pause while no owner decides. */
async function claimUntilDecided(
  member: InProcessMember,
  key: string,
  watched: string,
): Promise<{ holder: Holder; watchedLive: boolean }> {
  const until = performance.now() + 20_000;
  for (;;) {
    try {
      const now = await member.directory.claim(key, holder(member.node), 60_000);
      return { holder: now, watchedLive: member.membership.live().some((m) => m.node === watched) };
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || performance.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

Deno.test("embedded claims: a stalled decider is passed over only once dead, and grants nothing alone when back", async () => {
  const nodes = ["a", "b", "c", "d", "e"];
  // A key whose deciding owner is none of the claimants.
  const key = Array.from({ length: 200 }, (_, i) => `origin-${i}`).find((id) =>
    !["a", "b", "c"].includes(owners(id, nodes, 2)[0]!)
  )!;
  const [primary] = owners(key, nodes, 2);
  // A stopped process's timers stop too: the decider declares no one dead while it is stalled
  // (as it would, cut off with its timers running, and so drop their claims when back).
  await using cluster = await inProcessCluster(nodes, {
    config: (node) => node === primary ? { ...TEST_PROFILE, suspicionMult: 1000 } : undefined,
  });
  await joined(cluster.members);
  const byNode = new Map(cluster.members.map((m) => [m.node, m]));
  const decider = byNode.get(primary!)!;
  const [a, b, c] = ["a", "b", "c"].map((node) => byNode.get(node)!) as [
    InProcessMember,
    InProcessMember,
    InProcessMember,
  ];
  stall(cluster, decider, true);
  const started = performance.now();
  const results = await Promise.all([a, b].map((m) => claimUntilDecided(m, key, primary!)));
  const took = performance.now() - started;
  stall(cluster, decider, false);
  // Nothing is granted while the stalled decider is counted alive or suspect.
  for (const [i, { holder, watchedLive }] of results.entries()) {
    const granted = holder.node === ["a", "b"][i];
    assert(!granted || !watchedLive, `granted to ${holder.node} past a live owner`);
  }
  // Once it is dead, the next owner decides: exactly one of them, and both agree.
  const winner = results[0]!.holder.node;
  assert(winner === "a" || winner === "b", winner);
  assertEquals(results[1]!.holder.node, winner);
  assert(took < 15_000, `the takeover took ${took} ms`);
  // The decider comes back with no claims and decides again: alone it grants nothing.
  await eventually(
    () => cluster.members.every((m) => m.membership.live().length === nodes.length),
    "every member sees the decider back",
    { timeout: 15_000 },
  );
  assertEquals(c.directory.owners(key)[0]?.node, primary);
  assertEquals((await c.directory.claim(key, holder("c"), 60_000)).node, winner);
  const loser = winner === "a" ? b : a;
  assertEquals((await loser.directory.claim(key, holder(loser.node), 60_000)).node, winner);
  // The winner renews with the owners of now; the decider learns of it.
  const won = winner === "a" ? a : b;
  assertEquals((await won.directory.claim(key, holder(winner), 60_000)).node, winner);
  assertEquals((await c.directory.claim(key, holder("c"), 60_000)).node, winner);
});

/** A member's view of the cluster that does not change: `dead` are counted dead. */
function fixedView(self: string, nodes: readonly string[], dead: readonly string[]): Members {
  const list = nodes.map((node) => ({
    node,
    address: `http://${node}`,
    state: dead.includes(node) ? "dead" as const : "alive" as const,
    incarnation: 1,
    changedAt: 0,
  }));
  return {
    self,
    list: () => list,
    live: () => list.filter((m) => m.state === "alive"),
    onChange: () => () => {},
  };
}

Deno.test("embedded claims: members whose views differ on the deciding owner still grant one claim", async () => {
  const nodes = ["a", "b", "c", "d", "e"];
  // Keys whose deciding owner is d: a counts d dead, the others count every member alive.
  const keys = Array.from({ length: 200 }, (_, i) => `origin-${i}`).filter((id) =>
    owners(id, nodes, 1)[0] === "d"
  ).slice(0, 3);
  assertEquals(keys.length, 3);
  const network = new InProcessNetwork();
  const directories = new Map(nodes.map((node) => {
    const directory = new EmbeddedDirectory({
      members: fixedView(node, nodes, node === "a" ? ["d"] : []),
      transport: network.from(`http://${node}`),
      requestTimeout: 500,
    });
    network.register(
      `http://${node}`,
      (path, body) => directory.handle(path.slice("directory/".length), body),
    );
    return [node, directory];
  }));
  const claim = (node: string, key: string) =>
    directories.get(node)!.claim(key, holder(node), 60_000).then((h) => h.node);
  try {
    // a first, then b; b first, then a; both at once.
    assertEquals([await claim("a", keys[0]!), await claim("b", keys[0]!)], ["a", "a"]);
    assertEquals([await claim("b", keys[1]!), await claim("a", keys[1]!)], ["b", "b"]);
    const [one, other] = await Promise.all([claim("a", keys[2]!), claim("b", keys[2]!)]);
    assertEquals(one, other);
    // The claims hold for the third claimant whichever view it asks with.
    for (const [i, key] of keys.entries()) {
      const winner = i === 1 ? "b" : i === 0 ? "a" : one;
      assertEquals(await claim("c", key), winner);
    }
  } finally {
    for (const [node, directory] of directories) {
      await directory.close();
      network.unregister(`http://${node}`);
    }
  }
});

Deno.test("embedded claims: renewals behind a deciding owner that does not answer keep the claim on the next", async () => {
  const nodes = ["a", "b", "c", "d", "e"];
  const key = Array.from({ length: 200 }, (_, i) => `origin-${i}`).find((id) =>
    owners(id, nodes, 1)[0] === "d"
  )!;
  const network = new InProcessNetwork();
  // Every member counts d alive throughout: it is never passed over.
  const directories = new Map(nodes.map((node) => {
    const directory = new EmbeddedDirectory({
      members: fixedView(node, nodes, []),
      transport: network.from(`http://${node}`),
      requestTimeout: 1200,
    });
    network.register(
      `http://${node}`,
      (path, body) => directory.handle(path.slice("directory/".length), body),
    );
    return [node, directory];
  }));
  const ttl = 1500;
  const claim = async (node: string) => {
    try {
      return (await directories.get(node)!.claim(key, holder(node), ttl)).node;
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      return undefined;
    }
  };
  try {
    assertEquals(await claim("a"), "a");
    network.pause("http://d", true);
    // a renews every third of its lease, as a read-through does, while b claims all along.
    const renewals: Promise<string | undefined>[] = [];
    const others: Promise<string | undefined>[] = [];
    const renewing = setInterval(() => renewals.push(claim("a")), ttl / 3);
    const claiming = setInterval(() => others.push(claim("b")), 40);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    clearInterval(renewing);
    clearInterval(claiming);
    // No renewal was granted (d does not answer), and none found b holding the claim.
    assertEquals((await Promise.all(renewals)).filter((node) => node !== undefined), []);
    assertEquals((await Promise.all(others)).filter((node) => node !== "a"), []);
    assert(others.length > 0);
  } finally {
    network.pause("http://d", false);
    for (const [node, directory] of directories) {
      await directory.close();
      network.unregister(`http://${node}`);
    }
  }
});

Deno.test(
  "Redis claims: SET NX PX, renewed by the holder, on one server",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const nodes = ["one", "two", "three"];
    const directories = await Promise.all(
      nodes.map((node) => RedisDirectory.connect({ url: redis.url, node })),
    );
    try {
      await claimRules(directories, nodes, "origin-y");
      assertEquals(await redis.command("EXISTS", "packice:claim:{origin-y}"), 0);
    } finally {
      await Promise.all(directories.map((directory) => directory.close()));
    }
  },
);

Deno.test("Redis claims on a Redis Cluster", redisTestOptions, async () => {
  await using cluster = await startRedisCluster();
  const nodes = ["one", "two"];
  const directories = await Promise.all(
    nodes.map((node) => RedisDirectory.connect({ url: cluster.url, node })),
  );
  try {
    for (const key of ["origin-a", "origin-b", "origin-c"]) {
      await claimRules(directories, nodes, key);
    }
  } finally {
    await Promise.all(directories.map((directory) => directory.close()));
  }
});
