/**
 * The knobs of SWIM gossip, in two profiles: {@link LAN_PROFILE}, as
 * HashiCorp memberlist's `DefaultLANConfig`, and {@link TEST_PROFILE}, five
 * times faster for tests on one host; and the formulas that scale them with
 * the cluster's size.
 *
 * @module
 */

/** How often and how patiently a member probes, gossips and syncs. */
export interface GossipConfig {
  /** Milliseconds between probes of one member each. */
  readonly probeInterval: number;
  /** Milliseconds a direct ping waits for its ack before indirect probes start. */
  readonly probeTimeout: number;
  /** Members asked to probe a target that missed its direct ping. */
  readonly indirectChecks: number;
  /** Retransmits of a membership change: `retransmitMult x ceil(log10(n + 1))`. */
  readonly retransmitMult: number;
  /** Suspicion lasts at least `suspicionMult x max(1, log10 n) x probeInterval`. */
  readonly suspicionMult: number;
  /** Suspicion lasts at most this many times its least, without confirmations. */
  readonly suspicionMaxTimeoutMult: number;
  /** Milliseconds between full state exchanges with one random member (scaled up past 32 members). */
  readonly pushPullInterval: number;
  /** Milliseconds between gossip rounds. */
  readonly gossipInterval: number;
  /** Members each gossip round sends to. */
  readonly gossipNodes: number;
  /** Milliseconds a dead member still gets gossip, so it can learn of it and refute. */
  readonly gossipToTheDeadTime: number;
  /** The most an overloaded member stretches its probe interval and timeouts by (Lifeguard). */
  readonly awarenessMaxMultiplier: number;
  /** Milliseconds a request of the cluster protocol other than a probe may take. */
  readonly requestTimeout: number;
  /** Milliseconds dead and left members stay listed before they are forgotten. */
  readonly reapTime: number;
}

/** Memberlist's LAN defaults: probe every second, 500 ms to answer, 3 indirect probes. */
export const LAN_PROFILE: GossipConfig = Object.freeze({
  probeInterval: 1000,
  probeTimeout: 500,
  indirectChecks: 3,
  retransmitMult: 4,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  pushPullInterval: 30_000,
  gossipInterval: 200,
  gossipNodes: 3,
  gossipToTheDeadTime: 30_000,
  awarenessMaxMultiplier: 8,
  requestTimeout: 10_000,
  reapTime: 24 * 3600_000,
});

/** For tests on one host: probes every 200 ms, suspicion from 0.8 s to 2.4 s. */
export const TEST_PROFILE: GossipConfig = Object.freeze({
  probeInterval: 200,
  probeTimeout: 100,
  indirectChecks: 3,
  retransmitMult: 4,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 3,
  pushPullInterval: 2000,
  gossipInterval: 50,
  gossipNodes: 3,
  gossipToTheDeadTime: 5000,
  awarenessMaxMultiplier: 8,
  requestTimeout: 2000,
  reapTime: 60_000,
});

/** The profiles by name, as `--gossip-profile` takes them. */
export const GOSSIP_PROFILES: Readonly<Record<"lan" | "test", GossipConfig>> = Object.freeze({
  lan: LAN_PROFILE,
  test: TEST_PROFILE,
});

/**
 * The least suspicion timeout: `mult x max(1, log10 n) x interval`, as memberlist.
 *
 * @param mult The suspicion multiplier.
 * @param n Members known, this one included.
 * @param interval The probe interval in milliseconds.
 */
export function suspicionTimeout(mult: number, n: number, interval: number): number {
  return Math.floor(mult * Math.max(1, Math.log10(Math.max(1, n))) * interval);
}

/**
 * How many times a change is sent before it leaves the queue: `mult x ceil(log10(n + 1))`.
 *
 * @param mult The retransmit multiplier.
 * @param n Members known, this one included.
 */
export function retransmitLimit(mult: number, n: number): number {
  return mult * Math.ceil(Math.log10(n + 1));
}

/** Push/pull slows down past this many members, so full syncs do not saturate the network. */
const PUSH_PULL_SCALE_THRESHOLD = 32;

/**
 * The push/pull interval for `n` members: as configured up to 32, then one
 * more interval per doubling.
 *
 * @param interval The configured interval in milliseconds.
 * @param n Members known.
 */
export function pushPullScale(interval: number, n: number): number {
  if (n <= PUSH_PULL_SCALE_THRESHOLD) return interval;
  return (Math.ceil(Math.log2(n) - Math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1) * interval;
}

/**
 * How long a change (such as a new member) takes to reach every member by
 * gossip alone: each member sends it on for `retransmitLimit` gossip rounds,
 * to `gossipNodes` members each. Push/pull repairs what gossip missed within
 * a `pushPullInterval`.
 *
 * @param config The profile.
 * @param n Members.
 */
export function disseminationBound(config: GossipConfig, n: number): number {
  return retransmitLimit(config.retransmitMult, n) * config.gossipInterval;
}

/**
 * The documented failure-detection bounds for `n` members, in milliseconds,
 * on healthy members (awareness 0; an overloaded member stretches its own
 * share by up to `awarenessMaxMultiplier`).
 *
 * - `suspect`: every live member probes each other once per round of
 *   `n - 1` probe intervals (a shuffled round robin), so some member probes a
 *   failed one within a round, and suspects it one probe interval later
 *   (direct, then indirect probes). Past 15 members the bound is 15 probe
 *   intervals: with `n - 1` members each probing one member per interval, the
 *   chance that none has probed it after k intervals is about e^-k, below
 *   one in a million at k = 14.
 * - `dead`: suspicion lasts between `suspicionTimeout` (with `suspicionMult - 2`
 *   independent confirmations) and `suspicionMaxTimeoutMult` times that
 *   (without); a few gossip rounds carry the verdict to everyone.
 *
 * @param config The profile.
 * @param n Members, the failed one included.
 */
export function failureDetectionBounds(
  config: GossipConfig,
  n: number,
): { suspect: number; dead: number; deadTypical: number } {
  const round = Math.min(Math.max(1, n - 1), 14) * config.probeInterval;
  const suspect = round + config.probeInterval;
  const least = suspicionTimeout(config.suspicionMult, n, config.probeInterval);
  const spread = 4 * config.gossipInterval;
  return {
    suspect,
    dead: suspect + least * config.suspicionMaxTimeoutMult + spread,
    deadTypical: config.probeInterval * 2 + least + spread,
  };
}
