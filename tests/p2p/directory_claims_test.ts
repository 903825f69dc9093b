/**
 * Claims, the exclusive CREATE a read-through downloads under: in the
 * embedded directory (between members in one process) and in Redis (one
 * server, and a Redis Cluster).
 */
import { InProcessNetwork } from "../../p2p/cluster_transport.ts";
import { EmbeddedDirectory } from "../../p2p/directory/embedded.ts";
import { owners } from "../../p2p/directory/rendezvous.ts";
import type { Member, Members, MemberState } from "../../p2p/members.ts";
import { type HeldClaim, holdClaim } from "../../p2p/origin/claim.ts";
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

/** A member's view of the cluster that the test sets: `dead` are counted dead, the others alive. */
class View implements Members {
  readonly self: string;
  readonly #listeners = new Set<(member: Member) => void>();
  #list: Member[];

  constructor(self: string, nodes: readonly string[], dead: readonly string[]) {
    this.self = self;
    this.#list = nodes.map((node) => ({
      node,
      address: `http://${node}`,
      state: dead.includes(node) ? "dead" : "alive",
      incarnation: 1,
      changedAt: 0,
    }));
  }

  list(): readonly Member[] {
    return this.#list;
  }

  live(): readonly Member[] {
    return this.#list.filter((m) => m.state === "alive");
  }

  onChange(listener: (member: Member) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Counts `dead` dead and the others alive from now on, as membership says each change. */
  set(dead: readonly string[]): void {
    for (const [i, member] of this.#list.entries()) {
      const state: MemberState = dead.includes(member.node) ? "dead" : "alive";
      if (state === member.state) continue;
      const now = { ...member, state, incarnation: member.incarnation + 1, changedAt: Date.now() };
      this.#list = this.#list.with(i, now);
      for (const listener of this.#listeners) listener(now);
    }
  }
}

/** Directories of `nodes` over one in-process network, each on a {@link View} the test sets. */
function viewCluster(
  nodes: readonly string[],
  dead: (node: string) => readonly string[],
  options: { replicas?: number; requestTimeout?: number } = {},
) {
  const network = new InProcessNetwork();
  const views = new Map(nodes.map((node) => [node, new View(node, nodes, dead(node))]));
  const directories = new Map(nodes.map((node) => {
    const directory = new EmbeddedDirectory({
      members: views.get(node)!,
      transport: network.from(`http://${node}`),
      requestTimeout: options.requestTimeout ?? 500,
      ...(options.replicas === undefined ? {} : { replicas: options.replicas }),
    });
    network.register(
      `http://${node}`,
      (path, body) => directory.handle(path.slice("directory/".length), body),
    );
    return [node, directory];
  }));
  /** `node` as a claim's holder, reached where its directory answers. */
  const self = (node: string): Holder => ({ node, address: `http://${node}` });
  return {
    network,
    views,
    directories,
    self,
    claim: (node: string, key: string, ttl = 60_000) =>
      directories.get(node)!.claim(key, self(node), ttl).then((h) => h.node),
    /** Holds `node`'s claim of `key` as a read-through does: renewed, checked, lost. */
    hold: (node: string, key: string, ttl: number): HeldClaim =>
      holdClaim(directories.get(node)!, { id: key, self: self(node), ttl, log: () => {} }),
    async [Symbol.asyncDispose]() {
      for (const [node, directory] of directories) {
        await directory.close();
        network.unregister(`http://${node}`);
      }
    },
  };
}

/** The first of `origin-0`, `origin-1`, … that `pick` takes. */
function keyWhere(pick: (id: string) => boolean): string {
  const key = Array.from({ length: 1000 }, (_, i) => `origin-${i}`).find(pick);
  assert(key !== undefined, "a key of that kind");
  return key;
}

for (const replicas of [1, 2]) {
  Deno.test(`embedded claims: members whose views differ on the deciding owner still grant one claim (replicas ${replicas})`, async () => {
    const nodes = ["a", "b", "c", "d", "e"];
    // Keys whose deciding owner is d: a counts d dead, the others count every member alive.
    const keys = Array.from({ length: 200 }, (_, i) => `origin-${i}`).filter((id) =>
      owners(id, nodes, 1)[0] === "d"
    ).slice(0, 3);
    assertEquals(keys.length, 3);
    await using cluster = viewCluster(nodes, (node) => node === "a" ? ["d"] : [], { replicas });
    const { claim } = cluster;
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
  });
}

Deno.test("embedded claims: renewals behind a deciding owner that does not answer keep the claim on the next", async () => {
  const nodes = ["a", "b", "c", "d", "e"];
  const key = keyWhere((id) => owners(id, nodes, 1)[0] === "d");
  // Every member counts d alive throughout: it is never passed over.
  await using cluster = viewCluster(nodes, () => [], { requestTimeout: 1200 });
  const ttl = 1500;
  const claim = async (node: string) => {
    try {
      return await cluster.claim(node, key, ttl);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      return undefined;
    }
  };
  assertEquals(await claim("a"), "a");
  cluster.network.pause("http://d", true);
  try {
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
    cluster.network.pause("http://d", false);
  }
});

Deno.test("embedded claims: two holders after a partition heals: the one granted later stops as views converge, not at its renewal", async () => {
  const nodes = ["a", "b", "c", "d", "e"];
  const left = ["a", "b", "c"];
  const right = ["d", "e"];
  // Each side counts the other dead: their claim owners are disjoint, both grant.
  await using cluster = viewCluster(nodes, (node) => left.includes(node) ? right : left);
  const key = "origin-partitioned";
  // A lease long enough that no periodic renewal comes within the test.
  const ttl = 30_000;
  assertEquals(await cluster.claim("d", key, ttl), "d");
  await using d = cluster.hold("d", key, ttl);
  await new Promise((resolve) => setTimeout(resolve, 5));
  assertEquals(await cluster.claim("a", key, ttl), "a");
  await using a = cluster.hold("a", key, ttl);
  // The partition heals: each member learns of the others, one after another.
  const healed = performance.now();
  for (const node of nodes) {
    cluster.views.get(node)!.set([]);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // The later grant (a's) stops within a few messages of the views meeting; d keeps its claim.
  await eventually(() => a.lost.aborted, "a loses its claim", { timeout: 3000 });
  const took = performance.now() - healed;
  assertEquals(a.holder?.node, "d");
  assert(!d.lost.aborted, "d keeps its claim");
  for (const node of ["b", "c", "e"]) assertEquals(await cluster.claim(node, key, ttl), "d");
  assert(took < ttl / 3, `a lost its claim ${took} ms after the heal`);
});

Deno.test("embedded claims: a claim asked while the view settles waits, and yields to a holder it meets then", async () => {
  const nodes = ["a", "b", "c", "d", "e", "f"];
  const left = ["a", "b", "c"];
  const right = ["d", "e", "f"];
  // A key whose claim owners, once every member is alive, are all on d's side.
  const key = keyWhere((id) => owners(id, nodes, 3).every((node) => right.includes(node)));
  await using cluster = viewCluster(nodes, (node) => left.includes(node) ? right : left);
  const ttl = 30_000;
  assertEquals(await cluster.claim("a", key, ttl), "a");
  await using a = cluster.hold("a", key, ttl);
  // d has just seen the others back (a has not yet): its owners are none of a's.
  cluster.views.get("d")!.set([]);
  const claimed = cluster.claim("d", key, ttl);
  await new Promise((resolve) => setTimeout(resolve, 20));
  // a's view converges while d's claim waits: a renews with the owners of now.
  cluster.views.get("a")!.set([]);
  // d's claim, confirmed once its view settled, finds a holding it: d never starts.
  assertEquals(await claimed, "a");
  assert(!a.lost.aborted, "a keeps its claim");
  assertEquals(await cluster.claim("e", key, ttl), "a");
});

Deno.test("embedded claims: a holder wrongly declared dead takes its claim back once alive, and the one granted meanwhile stops", async () => {
  const nodes = ["a", "b", "c", "d", "e"];
  // A key a owns no claim of: the owners forget its claim when they count it dead.
  const key = keyWhere((id) => !owners(id, nodes, 3).includes("a"));
  await using cluster = viewCluster(nodes, () => []);
  const ttl = 30_000;
  assertEquals(await cluster.claim("a", key, ttl), "a");
  await using a = cluster.hold("a", key, ttl);
  // Every other member counts a dead (a hears nothing of it): its claim goes, b takes it.
  for (const node of nodes.filter((node) => node !== "a")) cluster.views.get(node)!.set(["a"]);
  assertEquals(await cluster.claim("b", key, ttl), "b");
  await using b = cluster.hold("b", key, ttl);
  // a refutes: back alive everywhere. Its owners tell it to check: it was granted first.
  const back = performance.now();
  for (const node of nodes.filter((node) => node !== "a")) cluster.views.get(node)!.set([]);
  await eventually(() => b.lost.aborted, "b loses the claim", { timeout: 3000 });
  const took = performance.now() - back;
  assertEquals(b.holder?.node, "a");
  assert(!a.lost.aborted, "a keeps its claim");
  assertEquals(await cluster.claim("c", key, ttl), "a");
  assert(took < ttl / 3, `b lost the claim ${took} ms after a was back`);
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
