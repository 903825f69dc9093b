import type { PeerStats } from "./peer.ts";

/**
 * What a running daemon says of itself: `packice status`, the Unix socket's
 * STATUS request and `GET /v1/status` give it.
 */
export interface DaemonStatus {
  /** The Packice version of the daemon. */
  readonly version: string;
  /** Its process id. */
  readonly pid: number;
  /** Seconds since it started. */
  readonly uptime: number;
  /** Whether it shares memory with clients on this host without copies (the native library loaded). */
  readonly zeroCopy: boolean;
  /** Which peer it serves: `mem`, `fs`, `tiered` or another kind. */
  readonly impl: string;
  /** Where it listens, such as `unix:///run/packice.sock` and `http://127.0.0.1:7070`. */
  readonly addresses: readonly string[];
  /** The base URL of its native GET listener (`--http-fast`), when it has one. */
  readonly httpFast?: string;
  /** Clients connected to its Unix socket. */
  readonly clients: number;
  /** Its peer's counts of objects, leases and bytes. */
  readonly stats: PeerStats;
  /** Its peer's own figures, such as the bytes of each tier (see `Peer.metrics`). */
  readonly metrics: Readonly<Record<string, number>>;
  /** The cluster as this daemon sees it, itself included; absent for a daemon outside one. */
  readonly members?: readonly ClusterMemberStatus[];
}

/** One member of a daemon's cluster, as `packice members` shows it. */
export interface ClusterMemberStatus {
  /** Node id. */
  readonly node: string;
  /** Its HTTP base URL. */
  readonly address: string;
  /** `alive`, `suspect`, `dead` or `left`. */
  readonly state: string;
  /** Its incarnation number: a member raises its own to refute a suspicion. */
  readonly incarnation: number;
  /** When this daemon saw its state change, in epoch milliseconds. */
  readonly changedAt: number;
}

/** An optional capability of a peer behind a transport: ask the daemon for its status. */
export interface StatusSource {
  /** The status of the daemon serving this peer. */
  status(): Promise<DaemonStatus>;
}
