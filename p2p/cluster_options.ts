/**
 * What a cluster peer is made of and where it reports: its options.
 *
 * @module
 */
import type { Peer } from "../core/peer.ts";
import type { Directory } from "./directory.ts";
import type { Members } from "./members.ts";
import type { TransferOptions } from "./transfer.ts";

/** Where a cluster peer reports holders it gave up and entries it could not announce. */
export interface ClusterLog {
  /** A fetch that moved to another holder, an announce that failed. */
  warn(message: string): void;
  /** A fetch done. */
  debug(message: string): void;
}

/** Options of a `ClusterPeer`. */
export interface ClusterPeerOptions {
  /** The daemon's own peer: objects created here, with its lease store (shared or not). */
  readonly home: Peer;
  /**
   * Where copies fetched from other daemons live: a peer of this process's
   * own (a `MemoryPeer` with its own lease store), so a copy never competes
   * with an id in a shared lease store.
   */
  readonly replicas: Peer;
  /** Who holds what. */
  readonly directory: Directory;
  /**
   * The cluster's members, when gossip runs: holders it knows to be dead or
   * gone are not asked, and are withdrawn. Without it every listed holder is
   * tried.
   */
  readonly members?: Members | undefined;
  /** This daemon's node id. */
  readonly node: string;
  /**
   * This daemon's HTTP base URL, which other daemons fetch from. Without it
   * the daemon fetches but is never announced as a holder.
   */
  readonly address?: string | undefined;
  /**
   * The port of this daemon's native piece listener on the host of
   * `address`, announced with it: other daemons ask for pieces there.
   */
  readonly piecePort?: number | undefined;
  /** The cluster token other daemons' HTTP servers want. */
  readonly token?: string | undefined;
  /**
   * With a lease store shared by the cluster (Redis): removes an object
   * from it when this daemon holds no copy (a delete of an object held
   * elsewhere). Its presence also means a seal the store admitted makes any
   * other entry under the id stale, to be replaced.
   */
  readonly removeShared?: ((objectId: string) => Promise<void>) | undefined;
  /** The largest object this daemon fetches, in bytes. Default: unbounded. */
  readonly maxObjectSize?: number;
  /** Pieces in flight, sources at once and piece timeouts of each transfer. */
  readonly transfer?: Pick<TransferOptions, "inFlight" | "pieceTimeout" | "maxSources">;
  /**
   * How long a source whose bytes do not verify, that times out or is far
   * slower than its own mean is not asked again, in ms. Default 30 000.
   */
  readonly blockMs?: number;
  /**
   * Bytes this daemon's fetches may hold at once (objects on their way); a
   * fetch beyond waits up to 30 s for room, then fails with
   * `CapacityExceededError`. Default: unbounded.
   */
  readonly transferBudget?: number | undefined;
  /** Bytes a second this daemon receives in all its transfers together. Default: unlimited. */
  readonly maxDownloadRate?: number | undefined;
  /** Where failures are reported. Default: nowhere. */
  readonly log?: ClusterLog;
}
