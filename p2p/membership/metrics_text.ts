/**
 * A member's view of its cluster as Prometheus text, for `/metrics`.
 *
 * @module
 */
import type { Member } from "../members.ts";
import type { MembershipCounters } from "./membership_options.ts";

/**
 * Prometheus text of a member's view: members by state, probes, suspicions,
 * refutations, and its health score.
 */
export function membershipMetricsText(
  members: readonly Pick<Member, "state">[],
  counters: MembershipCounters,
  health: number,
): string {
  const byState = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const member of members) byState[member.state]++;
  const lines = [
    "# HELP packice_cluster_members Members known to this daemon, by state.",
    "# TYPE packice_cluster_members gauge",
    ...Object.entries(byState).map(([state, n]) =>
      `packice_cluster_members{state="${state}"} ${n}`
    ),
  ];
  const metric = (name: string, type: string, help: string, value: number) =>
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
  metric("packice_cluster_probes_total", "counter", "Probes sent.", counters.probes);
  metric(
    "packice_cluster_probe_failures_total",
    "counter",
    "Probes no one answered.",
    counters.probeFailures,
  );
  metric(
    "packice_cluster_indirect_probes_total",
    "counter",
    "Indirect probes asked of other members.",
    counters.indirectProbes,
  );
  metric(
    "packice_cluster_suspicions_total",
    "counter",
    "Members this daemon began to suspect.",
    counters.suspicions,
  );
  metric(
    "packice_cluster_refutations_total",
    "counter",
    "Accusations of this daemon it refuted.",
    counters.refutations,
  );
  metric("packice_cluster_deaths_total", "counter", "Members seen to die.", counters.deaths);
  metric(
    "packice_cluster_gossip_rejected_total",
    "counter",
    "Gossip messages refused as malformed, replayed or misaddressed.",
    counters.rejected,
  );
  metric(
    "packice_cluster_health_score",
    "gauge",
    "Local health (Lifeguard awareness): 0 is healthy.",
    health,
  );
  return `${lines.join("\n")}\n`;
}
