import { HandedOut } from "../../core/handed_out.ts";
import type { BlobStore, RecoveredObject, StoredObject } from "../../core/blob_store.ts";
import type { Clock } from "../../core/clock.ts";
import { CapacityExceededError, ClosedError } from "../../core/errors.ts";
import type { ObjectInfo } from "../../core/object.ts";
import type { PeerMode } from "../../core/mode.ts";
import { TierMover } from "./mover.ts";
import { type Tier, TieredObject } from "./tiered_object.ts";
import { Tiers } from "./tiers.ts";

/** What a tiered peer does when both tiers are full: refuse writes, or drop the coldest objects. */
export type TierMode = PeerMode;

/** Bytes and objects held in one tier. */
export interface TierUsage {
  /** Bytes of the copies in this tier, sealed or being written. */
  readonly bytes: number;
  /** The tier's budget in bytes. */
  readonly capacity: number;
  /** Copies in this tier. */
  readonly objects: number;
}

/** What a tiered peer holds in each tier, and what has moved between them. */
export interface TierStats {
  /** The memory tier. */
  readonly hot: TierUsage;
  /** The disk tier. */
  readonly cold: TierUsage;
  /** Hot copies given up to bring memory under its low watermark. */
  readonly demotions: number;
  /** Bytes of the objects being demoted now: more than 0 while demotion runs. */
  readonly demoting: number;
  /** Bytes that demotions copied to disk (demoting an object already on disk copies none). */
  readonly demotedBytes: number;
  /** Objects copied back into memory after reads from disk. */
  readonly promotions: number;
  /** Bytes promotions copied into memory. */
  readonly promotedBytes: number;
  /** Objects dropped from lookups to make room on disk (cache mode). */
  readonly drops: number;
  /** READ leases granted on objects with a copy in memory. */
  readonly hits: number;
  /** READ leases granted on objects only on disk. */
  readonly misses: number;
  /** Demotions and promotions that failed; the object stayed where it was. */
  readonly failures: number;
}

/** How a tiered store sees leases: the lifecycle stays the peer's. */
export interface TierHost {
  /** Whether the object is the current incarnation of its id and no lease holds it. */
  isIdle(object: TieredObject): boolean;
  /** Removes an idle sealed object from lookups, as a delete would; resolves whether it did. */
  drop(object: TieredObject): Promise<boolean>;
}

/** Options of {@link TieredBlobStore}; sizes in bytes, already checked. */
export interface TieredBlobStoreOptions {
  /** The memory tier. */
  readonly hot: BlobStore;
  /** The disk tier: it keeps sealed objects across restarts. */
  readonly cold: BlobStore;
  /** Budget of the memory tier. */
  readonly hotCapacity: number;
  /** Budget of the disk tier. */
  readonly coldCapacity: number;
  /** Refuse writes or drop the coldest objects when both tiers are full. */
  readonly mode: TierMode;
  /** Hot bytes above which demotion starts. */
  readonly highWatermark: number;
  /** Hot bytes that demotion brings memory down to. */
  readonly lowWatermark: number;
  /** Reads from disk within {@link promoteWindow} that promote an object; 0 never promotes. */
  readonly promoteAfterReads: number;
  /** Milliseconds within which those reads must fall. */
  readonly promoteWindow: number;
  /** The clock of the promotion window. */
  readonly clock: Clock;
  /** Where a move between tiers that failed is told; by default stderr. */
  readonly warn?: ((message: string) => void) | undefined;
}

/**
 * A {@link BlobStore} over a memory tier and a disk tier, each with a byte
 * budget. It decides where bytes live; the peer above keeps the lifecycle.
 *
 * - Placement: a new object goes to memory when it fits there now, else
 *   straight to disk, so `create` never waits for room to be made in memory.
 * - Demotion (see `mover.ts`): when memory passes its high watermark, the least recently used
 *   idle hot objects are copied to disk (mapped memory written straight into
 *   the file) and their hot copies freed, in the background, until memory is
 *   at its low watermark. A hot copy goes only once its disk copy is sealed
 *   and durable, and only while no lease holds the object.
 * - Promotion: an object read from disk `promoteAfterReads` times within
 *   `promoteWindow` is copied back into memory in the background (the file
 *   read straight into the new memory), when memory has room; its disk copy
 *   stays, so demoting it again costs no I/O.
 * - Store mode writes every object through to disk at seal, and refuses a new
 *   object when disk has no room for it; cache mode keeps objects only in
 *   memory until demoted, and makes room on disk by dropping the least
 *   recently used idle objects there.
 */
export class TieredBlobStore implements BlobStore {
  /** The most distinct bytes it holds: the disk budget in store mode, both budgets in cache mode. */
  readonly capacity: number;
  readonly #tiers: Tiers;
  readonly #mover: TierMover;
  /** The newest incarnation of each id. */
  readonly #current = new Map<string, TieredObject>();
  readonly #handedOut = new HandedOut<TieredObject>();

  /** @param options The two tiers, their budgets, and the policies. */
  constructor(options: TieredBlobStoreOptions) {
    this.#tiers = new Tiers(options);
    this.#mover = new TierMover(this.#tiers);
    this.capacity = options.mode === "store"
      ? options.coldCapacity
      : options.hotCapacity + options.coldCapacity;
  }

  /** Bytes of every copy in both tiers. */
  get used(): number {
    return this.#tiers.usage.hot.bytes + this.#tiers.usage.cold.bytes;
  }

  /** Connects the peer that owns the lifecycle; called once, before use. */
  attach(host: TierHost): void {
    this.#tiers.host = host;
  }

  /** The newest incarnation of an object, or undefined. */
  current(objectId: string): TieredObject | undefined {
    return this.#current.get(objectId);
  }

  /**
   * Places a new object: in memory when it fits there now, else on disk.
   *
   * @throws {CapacityExceededError} When it fits in neither tier: in store mode when disk
   * has no room for it, in cache mode when dropping idle objects does not make enough.
   * @throws {ClosedError} When the store is closed.
   */
  async allocate(info: ObjectInfo): Promise<StoredObject> {
    this.#checkOpen(`allocate object ${info.id}`);
    const tiers = this.#tiers;
    const object = new TieredObject(info);
    if (tiers.options.mode === "store") tiers.reserve(object);
    try {
      if (!await this.#placeHot(object)) await this.#placeCold(object);
    } catch (error) {
      tiers.unreserve(object);
      throw error;
    }
    this.#handedOut.add(object);
    this.#current.set(object.id, object);
    this.#mover.kick();
    return object;
  }

  /**
   * Seals the object in the tier it was written to; in store mode, a copy in
   * memory is then written through to disk before this resolves.
   */
  async seal(stored: StoredObject, info: ObjectInfo): Promise<void> {
    const object = this.#own(stored, "seal");
    const tiers = this.#tiers;
    await object.pending;
    if (!object.written) {
      if (object.hot !== undefined) await tiers.hot.seal(object.hot, info);
      else await tiers.cold.seal(object.cold!, info);
      object.written = true;
    }
    object.info = info;
    if (object.reserved) {
      tiers.unreserve(object);
      tiers.charge("cold", object.size);
      try {
        await tiers.move(object, tiers.copy(object, "cold"));
      } catch (error) {
        // Keeps the room, so that sealing again retries the write-through.
        tiers.holdRoom(object);
        throw error;
      }
    }
    object.sealed = true;
    if (object.hot !== undefined) tiers.hotLru.touch(object);
    if (object.cold !== undefined) tiers.coldLru.touch(object);
    this.#mover.kick();
  }

  /** Frees every copy, once a move under way has finished. Idempotent. */
  async free(stored: StoredObject): Promise<void> {
    const object = this.#own(stored, "free");
    if (object.freed) return;
    const tiers = this.#tiers;
    object.freed = true;
    tiers.hotLru.delete(object);
    tiers.coldLru.delete(object);
    if (this.#current.get(object.id) === object) this.#current.delete(object.id);
    tiers.unreserve(object);
    await object.pending?.catch(() => {});
    if (object.moving !== undefined) await object.moving.catch(() => {});
    await Promise.all([tiers.freeCopy(object, "hot"), tiers.freeCopy(object, "cold")]);
  }

  /**
   * Finds the sealed objects on disk from an earlier run, oldest seal first
   * (least recently used); unfinished objects and demotions are removed by
   * the disk tier. The memory tier starts empty.
   */
  async recover(): Promise<RecoveredObject[]> {
    this.#checkOpen("recover");
    const tiers = this.#tiers;
    const found = await tiers.cold.recover();
    found.sort((a, b) =>
      (a.info.sealedAt ?? a.info.createdAt) - (b.info.sealedAt ?? b.info.createdAt)
    );
    return found.map(({ info, stored }) => {
      const object = new TieredObject(info);
      object.cold = stored;
      object.written = true;
      object.sealed = true;
      tiers.charge("cold", object.size);
      this.#handedOut.add(object);
      this.#current.set(object.id, object);
      tiers.coldLru.touch(object);
      return { info, stored: object };
    });
  }

  /**
   * Records a READ lease on the object: it becomes the most recently used in
   * both tiers, and a read from disk may start its promotion.
   *
   * @returns The tier that serves the read.
   */
  noteRead(object: TieredObject): Tier {
    const tier = object.tier;
    if (!object.sealed || object.freed) return tier;
    const tiers = this.#tiers;
    tiers.hotLru.refresh(object);
    tiers.coldLru.refresh(object);
    if (tier === "hot") {
      tiers.counts.hits++;
      return tier;
    }
    tiers.counts.misses++;
    this.#mover.readCold(object);
    return tier;
  }

  /** Bytes and objects per tier, and the counts of moves. */
  stats(): TierStats {
    const { usage, options, counts } = this.#tiers;
    const of = (tier: Tier, capacity: number) => ({ ...usage[tier], capacity });
    return {
      hot: of("hot", options.hotCapacity),
      cold: of("cold", options.coldCapacity),
      demoting: this.#mover.demoting,
      ...counts,
    };
  }

  /** Resolves once the demotions, promotions and frees under way, and those they start, are done. */
  settled(): Promise<void> {
    return this.#tiers.settled();
  }

  /**
   * Stops starting moves, waits for those under way, then frees memory and
   * closes the disk tier, which keeps its sealed objects. Idempotent.
   */
  close(): Promise<void> {
    const tiers = this.#tiers;
    tiers.closing ??= (async () => {
      await tiers.settled();
      await Promise.all([tiers.hot.close(), tiers.cold.close()]);
    })();
    return tiers.closing;
  }

  async #placeHot(object: TieredObject): Promise<boolean> {
    const tiers = this.#tiers;
    if (!tiers.fitsHot(object.size)) return false;
    tiers.charge("hot", object.size);
    try {
      object.hot = await tiers.hot.allocate(object.info);
      return true;
    } catch (error) {
      tiers.credit("hot", object.size);
      // Memory freed a moment ago may not be back in the memory store yet: use disk.
      if (error instanceof CapacityExceededError) return false;
      throw error;
    }
  }

  /**
   * Places a new object on disk without waiting for its files: making them
   * waits on the file system's journal, long while the disk is busy with
   * demotions, so it runs in the background and the object's first
   * write waits for it instead of `create`.
   */
  async #placeCold(object: TieredObject): Promise<void> {
    const tiers = this.#tiers;
    if (object.reserved) {
      tiers.unreserve(object);
      tiers.charge("cold", object.size);
    } else {
      await tiers.claimCold(object);
    }
    const pending = tiers.cold.allocate(object.info).then((copy) => {
      object.cold = copy;
      object.pending = undefined;
    }, (error) => {
      tiers.credit("cold", object.size);
      throw error;
    });
    object.pending = pending;
    // Its failure reaches the writes, seal and free that wait for it.
    tiers.track(pending.catch(() => {}));
  }

  #own(stored: StoredObject, action: string): TieredObject {
    this.#checkOpen(`${action} an object`);
    return this.#handedOut.own(stored, action);
  }

  #checkOpen(action: string): void {
    if (this.#tiers.closing !== undefined) {
      throw new ClosedError(`Cannot ${action}: store is closed`);
    }
  }
}
