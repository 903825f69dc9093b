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
 * Usage: deno run -A bench/membership_bench.ts [test|lan]
 */
import {
  disseminationBound,
  failureDetectionBounds,
  GOSSIP_PROFILES,
} from "../p2p/membership/config.ts";
import { type ClusterDaemon, startCluster, stateIn } from "../tests/p2p/cluster_daemons.ts";
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
