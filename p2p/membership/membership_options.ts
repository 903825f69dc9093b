/**
 * What a `Membership` takes and reports: its options, its log, its
 * counters.
 *
 * @module
 */
import type { ClusterTransport } from "../cluster_transport.ts";
import type { GossipConfig } from "./config.ts";
import type { Timers } from "./timers.ts";

/** Where the membership reports what it does. */
export interface MembershipLog {
  /** Joins, verdicts, refutations. */
  info(message: string): void;
  /** Refused gossip, seeds that do not answer. */
  warn(message: string): void;
  /** Every state change. */
  debug(message: string): void;
}

/** Options of `Membership`. */
export interface MembershipOptions {
  /** This member's node id, unique in the cluster. */
  readonly node: string;
  /** How messages reach other members: `HttpClusterTransport` with the cluster token. */
  readonly transport: ClusterTransport;
  /** The profile. Default `LAN_PROFILE`. */
  readonly config?: GossipConfig;
  /** The clock and timers. Default: the system's. */
  readonly timers?: Timers;
  /** Where events go. Default: nowhere. */
  readonly log?: MembershipLog;
}

/** Counts since start, for `/metrics`. */
export interface MembershipCounters {
  /** Probes sent. */
  readonly probes: number;
  /** Probes answered by neither the target nor any indirect prober. */
  readonly probeFailures: number;
  /** Indirect probes asked of other members. */
  readonly indirectProbes: number;
  /** Members this member began to suspect (by its probes or by gossip). */
  readonly suspicions: number;
  /** Accusations of this member it refuted. */
  readonly refutations: number;
  /** Members this member saw die. */
  readonly deaths: number;
  /** Incoming gossip messages refused: malformed, replayed or misaddressed. */
  readonly rejected: number;
}
