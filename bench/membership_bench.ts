/**
 * Membership of 8 real daemons on loopback, against the documented bounds:
 *
 * - join: from the moment a 9th daemon listens (it has joined through one
 *   member) until all 8 list it alive; bound: `disseminationBound`
 *   (retransmit rounds x gossip interval).
 * - death: from SIGKILL of that daemon until all 8 list it dead; bound:
 *   `failureDetectionBounds(...).dead`.
 *
 * Each figure is the median and the worst of a few rounds. The test gossip
 * profile by default (`lan` as the first argument for memberlist's LAN timing).
 *
 * Then, for scale, 100 members in this process over the in-process network
 * (test profile): messages each member sends per second once converged, and
 * the time until all 99 others list a killed member dead, against its bound.
 *
 * Usage: deno run -A bench/membership_bench.ts [test|lan]
 */
import {
  disseminationBound,
  failureDetectionBounds,
  GOSSIP_PROFILES,
} from "../p2p/membership/config.ts";
import { TEST_PROFILE } from "../p2p/membership/config.ts";
import { type ClusterDaemon, startCluster, stateIn } from "../tests/p2p/cluster_daemons.ts";
import { inProcessCluster } from "../tests/p2p/in_process_cluster.ts";
import { quantile, report } from "./stats.ts";

const MEMBERS = 8;
const ROUNDS = 3;
const profile = Deno.args[0] === "lan" ? "lan" : "test";
const config = GOSSIP_PROFILES[profile];

/** Milliseconds until `check` holds for every daemon, polling all every 10 ms. */
async function until(
  daemons: readonly ClusterDaemon[],
  node: string,
  state: string,
  since: number,
): Promise<number> {
  for (;;) {
    const views = await Promise.all(daemons.map((d) => d.members()));
    if (views.every((members) => stateIn(members, node) === state)) {
      return performance.now() - since;
    }
    if (performance.now() - since > 120_000) throw new Error(`${node} never ${state} everywhere`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

await using cluster = await startCluster(
  Array.from({ length: MEMBERS }, (_, i) => `m${i + 1}`),
  { profile },
);
const members = [...cluster.daemons];
for (const daemon of members) await until(members, daemon.node, "alive", performance.now());

const joins: number[] = [];
const deaths: number[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const node = `new-${round}`;
  const newcomer = await cluster.add(node);
  joins.push(await until(members, node, "alive", performance.now()));
  const killed = performance.now();
  await newcomer.signal("SIGKILL");
  deaths.push(await until(members, node, "dead", killed));
}

const n = MEMBERS + 1;
report({
  bench: "membership_join_seen_by_all",
  profile,
  members: MEMBERS,
  median_ms: quantile(joins, 0.5),
  max_ms: Math.max(...joins),
  bound_ms: disseminationBound(config, n),
});
const bounds = failureDetectionBounds(config, n);
report({
  bench: "membership_death_seen_by_all",
  profile,
  members: MEMBERS,
  median_ms: quantile(deaths, 0.5),
  max_ms: Math.max(...deaths),
  typical_ms: bounds.deadTypical,
  bound_ms: bounds.dead,
});

await scale(100);

/** 100 members in one process: steady message rate, and the time to a death seen everywhere. */
async function scale(n: number): Promise<void> {
  await using many = await inProcessCluster(Array.from({ length: n }, (_, i) => `n${i}`));
  const wait = async (check: () => boolean) => {
    const since = performance.now();
    while (!check()) {
      if (performance.now() - since > 60_000) throw new Error("No convergence in a minute");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return performance.now() - since;
  };
  await wait(() => many.members.every((m) => m.membership.live().length === n));
  // Let the joins' gossip run out, then count one steady second.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const probes = () => many.members.reduce((sum, m) => sum + m.membership.counters().probes, 0);
  const before = probes();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const perSecond = (probes() - before) / n;
  const victim = many.members[n - 1]!;
  await many.kill(victim);
  const others = many.members.slice(0, n - 1);
  const took = await wait(() =>
    others.every((m) => stateIn(m.membership.list(), victim.node) === "dead")
  );
  report({
    bench: "membership_in_process_death_seen_by_all",
    profile: "test",
    members: n,
    probes_per_member_per_s: perSecond,
    ms: took,
    bound_ms: failureDetectionBounds(TEST_PROFILE, n).dead,
  });
}
