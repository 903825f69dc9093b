/**
 * The objects sealed in a cluster peer's own peer: their content records at
 * seal, their announce to the directory, and their removal when the
 * directory forgets them or the peer evicts them.
 *
 * @module
 */
import { Access } from "../core/lease.ts";
import { ConflictError, NotFoundError } from "../core/errors.ts";
import type { Peer } from "../core/peer.ts";
import type { ClusterCounts } from "./cluster_metrics.ts";
import type { ClusterLog } from "./cluster_options.ts";
import { contentRecord } from "./content.ts";
import type { ContentRecord, Directory, Holder } from "./directory.ts";
import { offersEvict } from "./fetched_copies.ts";

/** What {@link SealedHere} works with; the cluster peer's own. */
export interface SealedHereOptions {
  readonly home: Peer;
  readonly directory: Directory;
  readonly node: string;
  /** The cluster token, which binds content records (see `contentRecord`). */
  readonly token: string | undefined;
  /** This daemon as a holder, once its address is known: only then is it announced. */
  readonly self: () => Holder | undefined;
  /** See `ClusterPeerOptions.removeShared`. */
  readonly removeShared: ((objectId: string) => Promise<void>) | undefined;
  readonly log: ClusterLog;
  readonly counts: ClusterCounts;
  /** Runs background work the cluster peer awaits on close. */
  readonly later: (work: Promise<void>) => void;
}

/** The content digest of each object sealed in `home`, by id, and what follows from it. */
export class SealedHere {
  readonly #options: SealedHereOptions;
  readonly #digests = new Map<string, string>();
  readonly #unsubscribe: (() => void) | undefined;

  /** Follows the objects sealed in `options.home`. */
  constructor(options: SealedHereOptions) {
    this.#options = options;
    const { home, directory, node, later } = options;
    this.#unsubscribe = offersEvict(home)
      ? home.onEvict((info) => {
        // Evicted here: this node withdraws, the object stays wherever else it is.
        if (!this.#digests.delete(info.id)) return;
        later(directory.withdraw(info.id, node));
      })
      : undefined;
  }

  /** The content digest of the object sealed here under `id`, if any. */
  digest(id: string): string | undefined {
    return this.#digests.get(id);
  }

  /** The ids of the objects sealed here. */
  ids(): IterableIterator<string> {
    return this.#digests.keys();
  }

  /** Forgets `id` after a delete through this peer. */
  delete(id: string): void {
    this.#digests.delete(id);
  }

  /**
   * Computes the content record of an object just sealed here, records its
   * digest, announces it. The seal stands whatever happens here (the object
   * deleted at once, the directory away): a failure is reported, and the
   * object is then served by this daemon only.
   */
  async announce(id: string): Promise<void> {
    try {
      await this.#recordAndAnnounce(id);
    } catch (error) {
      this.#options.log.warn(
        `Cannot record or announce object ${id}: ${(error as Error).message}`,
      );
    }
  }

  /**
   * As {@link SealedHere.announce}, for an object this daemon held before it
   * could announce anything (recovered from its data directory at a restart):
   * when the directory refuses it, holding other bytes under its id or the
   * object deleted meanwhile, the bytes here are stale and go, as a copy of
   * other bytes goes when Redis registers them again. With a shared lease
   * store, that store already said these bytes are the object's.
   */
  async announceHeld(id: string): Promise<void> {
    try {
      await this.#recordAndAnnounce(id, true);
    } catch (error) {
      this.#options.log.warn(
        `Cannot record or announce object ${id}: ${(error as Error).message}`,
      );
    }
  }

  /** Drops the bytes of an object sealed here whose record is gone. */
  forget(id: string): void {
    this.#digests.delete(id);
    const { home, removeShared, counts, later } = this.#options;
    if (removeShared === undefined) {
      // The lease store is this daemon's own: the object leaves through it.
      later(this.#discard(id));
      return;
    }
    const forgetting = home as Peer & { forget?: (objectId: string) => boolean };
    if (forgetting.forget?.(id) === true) counts.cluster_dropped_total++;
  }

  /** Stops following evictions. */
  close(): void {
    this.#unsubscribe?.();
  }

  /** Deletes an object of `home` (readers keep its bytes until they release). */
  async #discard(id: string): Promise<void> {
    const { home, counts } = this.#options;
    try {
      const { lease } = await home.acquire(id, Access.WRITE);
      await home.discard(lease.id);
      counts.cluster_dropped_total++;
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
  }

  async #recordAndAnnounce(id: string, held = false): Promise<void> {
    const { home } = this.#options;
    const { lease, blobs } = await home.acquire(id, Access.READ, { local: true });
    let record: ContentRecord;
    try {
      record = await contentRecord(id, blobs, this.#options.token);
    } catch (error) {
      await home.release(lease.id).catch(() => {});
      throw error;
    }
    this.#digests.set(id, record.digest);
    // The digest goes to the lease store while the directory hears of the holder.
    const recorded = (async () => {
      try {
        await home.recordDigest?.(lease.id, record.digest);
      } finally {
        await home.release(lease.id).catch(() => {});
      }
    })();
    await Promise.all([recorded, this.#announce(record, held)]);
  }

  /** Announces this daemon as holder of `record`, an object sealed here (`held`: before). */
  async #announce(record: ContentRecord, held: boolean): Promise<void> {
    const { directory, removeShared, log } = this.#options;
    const holder = this.#options.self();
    if (holder === undefined) return;
    try {
      await directory.announce(record, holder);
    } catch (error) {
      const refused = error instanceof ConflictError || error instanceof NotFoundError;
      if (held && refused && removeShared === undefined) {
        log.warn(`Dropped the object ${record.id} held here: ${(error as Error).message}`);
        this.forget(record.id);
        return;
      }
      if (!(error instanceof ConflictError) || removeShared === undefined) {
        log.warn(`Cannot announce object ${record.id}: ${(error as Error).message}`);
        return;
      }
      // The shared lease store let this seal through: the other entry is stale.
      await directory.remove(record.id);
      await directory.announce(record, holder);
    }
  }
}
