/**
 * The copies a cluster peer fetched from other daemons: a peer of their own,
 * and which content each id's copy holds.
 *
 * @module
 */
import { Access } from "../core/lease.ts";
import { NotFoundError, StoreUnavailableError } from "../core/errors.ts";
import type { Acquired, AcquireOptions, Peer } from "../core/peer.ts";
import type { ObjectInfo } from "../core/object.ts";
import type { ClusterCounts } from "./cluster_metrics.ts";
import type { Directory } from "./directory.ts";

/** A peer that reports the objects it drops to make room (`BasePeer.onEvict`). */
export interface Evicting {
  /** Calls `listener` with each object evicted; returns its removal. */
  onEvict(listener: (info: ObjectInfo) => void): () => void;
}

/** Whether `peer` reports its evictions. */
export function offersEvict(peer: Peer): peer is Peer & Evicting {
  return typeof (peer as Partial<Evicting>).onEvict === "function";
}

/**
 * Fetched copies held in the `replicas` peer, by id, with the content digest
 * each was verified against. A copy the peer evicts leaves the map and the
 * directory withdraws this node as its holder (that id only).
 */
export class FetchedCopies {
  /** The peer the copies live in. */
  readonly peer: Peer;
  /** Copies assembled here, sealed and not announced yet: served before the directory lists them. */
  readonly announcing = new Set<string>();
  readonly #directory: Directory;
  readonly #node: string;
  readonly #counts: ClusterCounts;
  readonly #digests = new Map<string, string>();
  /** Leases granted by the peer. */
  readonly #leases = new Set<string>();
  /** Copies being dropped, by id: a new copy of the id waits for its predecessor to go. */
  readonly #dropping = new Map<string, Promise<void>>();
  readonly #unsubscribe: (() => void) | undefined;

  /**
   * Keeps the copies of `peer`.
   *
   * @param later Runs background work the cluster peer awaits on close.
   */
  constructor(
    peer: Peer,
    directory: Directory,
    node: string,
    counts: ClusterCounts,
    later: (work: Promise<void>) => void,
  ) {
    this.peer = peer;
    this.#directory = directory;
    this.#node = node;
    this.#counts = counts;
    this.#unsubscribe = offersEvict(peer)
      ? peer.onEvict((info) => {
        if (this.#digests.get(info.id) === undefined) return;
        this.#digests.delete(info.id);
        later(this.#directory.withdraw(info.id, this.#node));
      })
      : undefined;
  }

  /** The content digest of the copy of `id`, if one is held. */
  digest(id: string): string | undefined {
    return this.#digests.get(id);
  }

  /** Whether a copy of `id` is held. */
  has(id: string): boolean {
    return this.#digests.has(id);
  }

  /** The ids of the copies held. */
  ids(): IterableIterator<string> {
    return this.#digests.keys();
  }

  /** Records a copy just sealed. */
  add(id: string, digest: string): void {
    this.#digests.set(id, digest);
  }

  /** Whether `leaseId` is a lease of the copies' peer. */
  owns(leaseId: string): boolean {
    return this.#leases.has(leaseId);
  }

  /** Ends a lease of the copies' peer; false when it is not one. */
  release(leaseId: string): Promise<void> | undefined {
    return this.#leases.delete(leaseId) ? this.peer.release(leaseId) : undefined;
  }

  /** Discards through a lease of the copies' peer; undefined when it is not one. */
  discard(leaseId: string): Promise<void> | undefined {
    return this.#leases.delete(leaseId) ? this.peer.discard(leaseId) : undefined;
  }

  /** Settles once a copy of `id` being dropped is gone. */
  async gone(id: string): Promise<void> {
    await this.#dropping.get(id)?.catch(() => {});
  }

  /**
   * A READ lease on the copy of `id` of content `digest`; undefined, with the
   * copy dropped, when it is gone or (with `check`) the directory no longer
   * lists its content.
   */
  async read(
    id: string,
    digest: string,
    options: AcquireOptions,
    check: boolean,
  ): Promise<Acquired | undefined> {
    let acquired: Acquired;
    try {
      acquired = await this.peer.acquire(id, Access.READ, options);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      if (this.#digests.get(id) === digest) this.#digests.delete(id);
      return undefined;
    }
    if (check) {
      let current: string | undefined;
      try {
        current = (await this.#directory.lookup(id))?.digest;
      } catch (error) {
        // The directory is away: the copy is served as it stands.
        if (!(error instanceof StoreUnavailableError)) {
          await this.peer.release(acquired.lease.id).catch(() => {});
          throw error;
        }
        current = digest;
      }
      if (current !== digest && !this.announcing.has(id)) {
        await this.peer.release(acquired.lease.id).catch(() => {});
        await this.drop(id, digest);
        return undefined;
      }
      this.#counts.cluster_local_hits_total++;
    }
    this.#leases.add(acquired.lease.id);
    return acquired;
  }

  /** Removes the copy of `id` of content `digest`; readers keep its bytes until they release. */
  async drop(id: string, digest: string): Promise<void> {
    if (this.#digests.get(id) !== digest) return;
    this.#digests.delete(id);
    this.#counts.cluster_dropped_total++;
    const dropping = (async () => {
      try {
        const { lease } = await this.peer.acquire(id, Access.WRITE);
        await this.peer.discard(lease.id);
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    })().finally(() => this.#dropping.delete(id));
    this.#dropping.set(id, dropping);
    await dropping;
  }

  /** Stops following evictions and closes the copies' peer. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    await this.peer.close();
  }
}
