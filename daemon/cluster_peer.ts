/**
 * How a daemon joins its peer to a cluster: the peer it serves becomes a
 * {@link ClusterPeer} over its own peer, a peer for fetched copies, and a
 * directory. With `--redis` the directory is {@link RedisDirectory} beside the
 * Redis lease store; the embedded directory and gossip membership plug in
 * through the same {@link wrapCluster}.
 *
 * @module
 */
import { NotFoundError } from "../core/errors.ts";
import { Access } from "../core/lease.ts";
import { leaseRecord } from "../core/lease_store.ts";
import { newId } from "../core/validate.ts";
import type { Peer } from "../core/peer.ts";
import type { RedisLeaseStore } from "../backends/redis/mod.ts";
import { MemoryPeer } from "../peers/memory_peer.ts";
import { ClusterPeer } from "../p2p/cluster_peer.ts";
import type { ClusterPeerOptions } from "../p2p/cluster_options.ts";
import type { Directory } from "../p2p/directory.ts";
import type { Members } from "../p2p/members.ts";
import { RedisDirectory } from "../p2p/directory/redis.ts";
import type { Logger } from "./log.ts";
import type { DaemonOptions } from "./options.ts";

/** What {@link wrapCluster} takes besides the daemon's own peer. */
export interface ClusterWiring {
  /** Who holds what. The cluster peer owns it and closes it. */
  readonly directory: Directory;
  /** The members, when gossip runs; see {@link ClusterPeerOptions.members}. */
  readonly members?: Members | undefined;
  /** This daemon's node id. */
  readonly node: string;
  /** Bytes the peer of fetched copies may hold. */
  readonly capacity: number;
  /** This daemon's HTTP base URL; may be set later through `ClusterPeer.address`. */
  readonly address?: string | undefined;
  /** The cluster token. */
  readonly token?: string | undefined;
  /** See {@link ClusterPeerOptions.removeShared}. */
  readonly removeShared?: ((objectId: string) => Promise<void>) | undefined;
  /** Where fetch failures go. */
  readonly log?: Logger;
  /** See {@link ClusterPeerOptions.transferBudget}. */
  readonly transferBudget?: number | undefined;
  /** See {@link ClusterPeerOptions.maxDownloadRate}. */
  readonly maxDownloadRate?: number | undefined;
  /** Transfer tuning. */
  readonly transfer?: ClusterPeerOptions["transfer"];
}

/**
 * Wraps a daemon's peer for a cluster: fetch on miss, content records at
 * seal, cluster-wide delete. Fetched copies live in a `MemoryPeer` of
 * `capacity` bytes with a lease store of its own, in cache mode.
 *
 * @example With a directory of your own
 * ```ts ignore
 * const peer = wrapCluster(await createPeer(options, log), {
 *   directory, node: "node-1", capacity: options.capacity, token: options.token,
 * });
 * ```
 */
export function wrapCluster(home: Peer, wiring: ClusterWiring): ClusterPeer {
  return new ClusterPeer({
    home,
    // Copies are a cache whatever `--mode` says: the least recently read idle
    // ones make room for new fetches, and this node withdraws as their holder.
    replicas: new MemoryPeer({ capacity: wiring.capacity, mode: "cache" }),
    directory: wiring.directory,
    members: wiring.members,
    node: wiring.node,
    address: wiring.address,
    token: wiring.token,
    removeShared: wiring.removeShared,
    maxObjectSize: wiring.capacity,
    maxDownloadRate: wiring.maxDownloadRate,
    transferBudget: wiring.transferBudget,
    ...(wiring.transfer === undefined ? {} : { transfer: wiring.transfer }),
    ...(wiring.log === undefined ? {} : { log: wiring.log }),
  });
}

/**
 * The Redis half of a cluster with `--redis`: a {@link RedisDirectory} on the
 * lease store's namespace and node, and removal of objects from the shared
 * lease store through its own WRITE lease and discard.
 */
export async function redisWiring(
  options: DaemonOptions,
  leases: RedisLeaseStore,
  log: Logger,
): Promise<Pick<ClusterWiring, "directory" | "node" | "removeShared">> {
  const directory = await RedisDirectory.connect({
    url: options.redis!,
    namespace: leases.namespace,
    node: leases.node,
    connectAttempts: Infinity,
    log,
  });
  const removeShared = async (objectId: string) => {
    const lease = leaseRecord(newId(), objectId, Access.WRITE, undefined, Date.now(), leases.node);
    try {
      await leases.grant(objectId, lease);
    } catch (error) {
      if (error instanceof NotFoundError) return; // Gone already.
      throw error;
    }
    await leases.discard(lease.id);
  };
  return { directory, node: leases.node, removeShared };
}
