import type { PeerStats } from "./peer.ts";

/** A figure of {@link PeerStats} as a metric: its name without the `packice_` prefix, and what it means. */
export interface StatsMetric {
  /** The metric's name; one ending in `_total` is a counter, any other a gauge. */
  readonly name: string;
  /** The field of {@link PeerStats} it reports; an absent field counts 0. */
  readonly field: keyof PeerStats;
  /** One line of help. */
  readonly help: string;
}

/** The metrics every peer reports, from its {@link PeerStats}. */
export const STATS_METRICS: readonly StatsMetric[] = [
  { name: "objects", field: "objects", help: "Objects in lookups." },
  { name: "bytes", field: "bytes", help: "Bytes held, including deleted objects still read." },
  { name: "capacity_bytes", field: "capacity", help: "The most bytes the peer may hold." },
  { name: "leases", field: "leases", help: "Live leases." },
  {
    name: "hits_total",
    field: "hits",
    help: "READ leases granted; with tiers, reads served from the fastest tier.",
  },
  {
    name: "misses_total",
    field: "misses",
    help: "Reads of objects not found; with tiers, reads that went to a slower tier.",
  },
  { name: "evictions_total", field: "evictions", help: "Objects dropped to make room." },
  {
    name: "expirations_total",
    field: "expirations",
    help: "Objects that left lookups at the end of their TTL.",
  },
];

/**
 * A peer's stats and its own metrics as one set of figures by name, without
 * the `packice_` prefix: what `Client.metrics()` returns and `/metrics`
 * prints.
 *
 * @param stats The peer's {@link PeerStats}.
 * @param extra The peer's own metrics (`Peer.metrics()`), and a server's.
 * @returns The figures by name.
 *
 * @example
 * ```ts
 * import { metricsOf } from "@packice/packice";
 * const figures = metricsOf({ objects: 1, leases: 0, bytes: 5, capacity: 10 });
 * console.log(figures.hits_total); // 0
 * ```
 */
export function metricsOf(
  stats: PeerStats,
  extra: Readonly<Record<string, number>> = {},
): Record<string, number> {
  const figures: Record<string, number> = {};
  for (const { name, field } of STATS_METRICS) figures[name] = stats[field] ?? 0;
  return Object.assign(figures, extra);
}
