import type { BlobStore, RecoveredObject, StoredObject } from "../../core/blob_store.ts";
import type { Clock } from "../../core/clock.ts";
import {
  CapacityExceededError,
  ClosedError,
  InvalidArgumentError,
  PackiceError,
} from "../../core/errors.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { copyObject } from "./copy.ts";
import { Lru } from "../../core/lru.ts";
import type { PeerMode } from "../../core/mode.ts";
import { type Tier, TieredObject } from "./tiered_object.ts";

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
}

/**
 * Demotions run at once: one object's flushes to disk overlap the next one's
 * copy, where a single demoter would leave the disk idle between objects.
 */
const DEMOTERS = 2;

interface Usage {
  bytes: number;
  objects: number;
}

/**
 * A {@link BlobStore} over a memory tier and a disk tier, each with a byte
 * budget. It decides where bytes live; the peer above keeps the lifecycle.
 *
 * - Placement: a new object goes to memory when it fits there now, else
 *   straight to disk, so `create` never waits for room to be made in memory.
 * - Demotion: when memory passes its high watermark, the least recently used
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
  readonly #hot: BlobStore;
  readonly #cold: BlobStore;
  readonly #options: TieredBlobStoreOptions;
  readonly #hotLru = new Lru<TieredObject>();
  readonly #coldLru = new Lru<TieredObject>();
  /** The newest incarnation of each id. */
  readonly #current = new Map<string, TieredObject>();
  readonly #handedOut = new WeakSet<TieredObject>();
  readonly #usage: Record<Tier, Usage> = {
    hot: { bytes: 0, objects: 0 },
    cold: { bytes: 0, objects: 0 },
  };
  /** Disk bytes promised to write-through copies of objects being written to memory. */
  #reserved = 0;
  readonly #counts = {
    demotions: 0,
    demotedBytes: 0,
    promotions: 0,
    promotedBytes: 0,
    drops: 0,
    hits: 0,
    misses: 0,
    failures: 0,
  };
  readonly #tasks = new Set<Promise<void>>();
  /** Demoters running. */
  #demoters = 0;
  /** Hot bytes the demoters are moving out. */
  #outgoing = 0;
  #host: TierHost | undefined;
  #closing: Promise<void> | undefined;

  /** @param options The two tiers, their budgets, and the policies. */
  constructor(options: TieredBlobStoreOptions) {
    this.#hot = options.hot;
    this.#cold = options.cold;
    this.#options = options;
    this.capacity = options.mode === "store"
      ? options.coldCapacity
      : options.hotCapacity + options.coldCapacity;
  }

  /** Bytes of every copy in both tiers. */
  get used(): number {
    return this.#usage.hot.bytes + this.#usage.cold.bytes;
  }

  /** Connects the peer that owns the lifecycle; called once, before use. */
  attach(host: TierHost): void {
    this.#host = host;
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
    const object = new TieredObject(info);
    if (this.#options.mode === "store") this.#reserve(object);
    try {
      if (!await this.#placeHot(object)) await this.#placeCold(object);
    } catch (error) {
      this.#unreserve(object);
      throw error;
    }
    this.#handedOut.add(object);
    this.#current.set(object.id, object);
    this.#kick();
    return object;
  }

  /**
   * Seals the object in the tier it was written to; in store mode, a copy in
   * memory is then written through to disk before this resolves.
   */
  async seal(stored: StoredObject, info: ObjectInfo): Promise<void> {
    const object = this.#own(stored, "seal");
    await object.pending;
    if (!object.written) {
      if (object.hot !== undefined) await this.#hot.seal(object.hot, info);
      else await this.#cold.seal(object.cold!, info);
      object.written = true;
    }
    object.info = info;
    if (object.reserved) {
      this.#unreserve(object);
      this.#charge("cold", object.size);
      try {
        await this.#move(object, this.#copy(object, "cold"));
      } catch (error) {
        // Keeps the room, so that sealing again retries the write-through.
        this.#reserved += object.size;
        object.reserved = true;
        throw error;
      }
    }
    object.sealed = true;
    if (object.hot !== undefined) this.#hotLru.touch(object);
    if (object.cold !== undefined) this.#coldLru.touch(object);
    this.#kick();
  }

  /** Frees every copy, once a move under way has finished. Idempotent. */
  async free(stored: StoredObject): Promise<void> {
    const object = this.#own(stored, "free");
    if (object.freed) return;
    object.freed = true;
    this.#hotLru.delete(object);
    this.#coldLru.delete(object);
    if (this.#current.get(object.id) === object) this.#current.delete(object.id);
    this.#unreserve(object);
    await object.pending?.catch(() => {});
    if (object.moving !== undefined) await object.moving.catch(() => {});
    await Promise.all([this.#freeCopy(object, "hot"), this.#freeCopy(object, "cold")]);
  }

  /**
   * Finds the sealed objects on disk from an earlier run, oldest seal first
   * (least recently used); unfinished objects and demotions are removed by
   * the disk tier. The memory tier starts empty.
   */
  async recover(): Promise<RecoveredObject[]> {
    this.#checkOpen("recover");
    const found = await this.#cold.recover();
    found.sort((a, b) =>
      (a.info.sealedAt ?? a.info.createdAt) - (b.info.sealedAt ?? b.info.createdAt)
    );
    return found.map(({ info, stored }) => {
      const object = new TieredObject(info);
      object.cold = stored;
      object.written = true;
      object.sealed = true;
      this.#charge("cold", object.size);
      this.#handedOut.add(object);
      this.#current.set(object.id, object);
      this.#coldLru.touch(object);
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
    this.#hotLru.refresh(object);
    this.#coldLru.refresh(object);
    if (tier === "hot") {
      this.#counts.hits++;
      return tier;
    }
    this.#counts.misses++;
    if (this.#promotionDue(object)) this.#startPromotion(object);
    return tier;
  }

  /** Bytes and objects per tier, and the counts of moves. */
  stats(): TierStats {
    const usage = (tier: Tier, capacity: number) => ({ ...this.#usage[tier], capacity });
    return {
      hot: usage("hot", this.#options.hotCapacity),
      cold: usage("cold", this.#options.coldCapacity),
      demoting: this.#outgoing,
      ...this.#counts,
    };
  }

  /** Resolves once the demotions, promotions and frees under way, and those they start, are done. */
  async settled(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
  }

  /**
   * Stops starting moves, waits for those under way, then frees memory and
   * closes the disk tier, which keeps its sealed objects. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.settled();
      await Promise.all([this.#hot.close(), this.#cold.close()]);
    })();
    return this.#closing;
  }

  async #placeHot(object: TieredObject): Promise<boolean> {
    if (object.size > this.#options.hotCapacity - this.#usage.hot.bytes) return false;
    this.#charge("hot", object.size);
    try {
      object.hot = await this.#hot.allocate(object.info);
      return true;
    } catch (error) {
      this.#credit("hot", object.size);
      // Memory freed a moment ago may not be back in the memory store yet: use disk.
      if (error instanceof CapacityExceededError) return false;
      throw error;
    }
  }

  /**
   * Places a new object on disk without waiting for its files: making them
   * waits on the file system's journal, for milliseconds while the disk is
   * busy with demotions, so it runs in the background and the object's first
   * write waits for it instead of `create`.
   */
  async #placeCold(object: TieredObject): Promise<void> {
    if (object.reserved) {
      this.#unreserve(object);
      this.#charge("cold", object.size);
    } else {
      await this.#claimCold(object);
    }
    const pending = this.#cold.allocate(object.info).then((copy) => {
      object.cold = copy;
      object.pending = undefined;
    }, (error) => {
      this.#credit("cold", object.size);
      throw error;
    });
    object.pending = pending;
    // Its failure reaches the writes, seal and free that wait for it.
    this.#track(pending.catch(() => {}));
  }

  /**
   * Makes a copy of a sealed object in tier `to` from its copy in the other
   * tier, and adds it to the object once sealed there. The caller has
   * charged the room in `to`; it is given back when the copy fails.
   */
  async #copy(object: TieredObject, to: Tier): Promise<void> {
    const [store, source] = to === "hot" ? [this.#hot, object.cold!] : [this.#cold, object.hot!];
    let copy: StoredObject | undefined;
    try {
      copy = await store.allocate(object.info);
      await copyObject(source, copy);
      await store.seal(copy, object.info);
    } catch (error) {
      this.#credit(to, object.size);
      if (copy !== undefined) await store.free(copy).catch(() => {});
      throw error;
    }
    object[to] = copy;
  }

  /** Marks `task` as the one move of `object` under way: no other starts, and freeing waits for it. */
  #move(object: TieredObject, task: Promise<void>): Promise<void> {
    const moving = task.finally(() => {
      object.moving = undefined;
    });
    object.moving = moving;
    return moving;
  }

  /** Starts demoters when memory is above its high watermark, up to {@link DEMOTERS}. */
  #kick(): void {
    if (this.#closing !== undefined || this.#usage.hot.bytes <= this.#options.highWatermark) return;
    while (this.#demoters < DEMOTERS) {
      this.#demoters++;
      this.#track(
        this.#demoteDown().finally(() => {
          this.#demoters--;
        }),
      );
    }
  }

  /**
   * Demotes the least recently used idle hot objects one after the other,
   * until memory, less what other demoters are moving out, is at the low
   * watermark.
   */
  async #demoteDown(): Promise<void> {
    const { lowWatermark } = this.#options;
    while (this.#closing === undefined && this.#usage.hot.bytes - this.#outgoing > lowWatermark) {
      const victim = this.#idleLeast(this.#hotLru);
      if (victim === undefined) return;
      this.#outgoing += victim.size;
      try {
        await this.#move(victim, this.#demote(victim));
      } catch (error) {
        this.#failed(error);
        this.#hotLru.refresh(victim);
        return;
      } finally {
        this.#outgoing -= victim.size;
      }
    }
  }

  /**
   * Copies the object to disk unless it is there already, then frees its hot
   * copy if it is still idle; an object a reader took meanwhile keeps both.
   */
  async #demote(object: TieredObject): Promise<void> {
    if (object.cold === undefined) {
      await this.#claimCold(object);
      if (object.freed || object.hot === undefined) {
        this.#credit("cold", object.size);
        return;
      }
      await this.#copy(object, "cold");
      this.#counts.demotedBytes += object.size;
      if (object.freed) return;
      this.#coldLru.touch(object);
    }
    if (object.freed || object.hot === undefined || !this.#host!.isIdle(object)) return;
    this.#counts.demotions++;
    this.#track(this.#freeCopy(object, "hot"));
  }

  /** Starts copying the object into memory, when memory has room for it now. */
  #startPromotion(object: TieredObject): void {
    if (object.busy || object.hot !== undefined || this.#closing !== undefined) return;
    // Memory without room now: a later read tries again.
    if (object.size > this.#options.hotCapacity - this.#usage.hot.bytes) return;
    this.#charge("hot", object.size);
    this.#track(this.#move(object, this.#promote(object)));
  }

  async #promote(object: TieredObject): Promise<void> {
    await this.#copy(object, "hot");
    object.coldReads = 0;
    object.coldSince = undefined;
    this.#counts.promotions++;
    this.#counts.promotedBytes += object.size;
    if (object.freed) return;
    this.#hotLru.touch(object);
    this.#kick();
  }

  /** Counts a read from disk; true when it is the read that earns a promotion. */
  #promotionDue(object: TieredObject): boolean {
    const { promoteAfterReads, promoteWindow, clock } = this.#options;
    if (promoteAfterReads === 0) return false;
    const now = clock.now();
    if (object.coldSince === undefined || now - object.coldSince > promoteWindow) {
      object.coldSince = now;
      object.coldReads = 0;
    }
    return ++object.coldReads >= promoteAfterReads;
  }

  /**
   * Makes room on disk for a copy of `object` and charges it, in the same
   * turn as the last check. Cache mode drops the least recently used idle
   * objects there; store mode never drops.
   *
   * @throws {CapacityExceededError} When the room cannot be made.
   */
  async #claimCold(object: TieredObject): Promise<void> {
    const { mode, coldCapacity } = this.#options;
    const free = () => coldCapacity - this.#usage.cold.bytes - this.#reserved;
    for (let tries = this.#coldLru.size; free() < object.size; tries--) {
      const victim = mode === "cache" && tries >= 0 && object.size <= coldCapacity
        ? this.#idleLeast(this.#coldLru)
        : undefined;
      if (victim === undefined) {
        throw new CapacityExceededError(
          `Cannot place ${object.size} bytes of object ${object.id}: ${free()} of ${coldCapacity} bytes free on disk and ${
            mode === "store" ? "store mode drops nothing" : "no idle object to drop"
          }`,
        );
      }
      await this.#dropCold(victim);
    }
    this.#charge("cold", object.size);
  }

  /** Frees a disk copy: the whole object when that is its only copy, else just the copy. */
  async #dropCold(object: TieredObject): Promise<void> {
    if (object.hot !== undefined) {
      await this.#freeCopy(object, "cold");
      return;
    }
    object.dropping = true;
    try {
      if (await this.#host!.drop(object)) this.#counts.drops++;
      else this.#coldLru.refresh(object);
    } finally {
      object.dropping = false;
    }
  }

  /**
   * The least recently used object of `lru` that is idle and not busy. Objects
   * held by leases are in use: they become the most recently used.
   */
  #idleLeast(lru: Lru<TieredObject>): TieredObject | undefined {
    let left = lru.size;
    for (const object of lru) {
      if (left-- <= 0) return undefined;
      if (object.busy) continue;
      if (this.#host!.isIdle(object)) return object;
      lru.refresh(object);
    }
    return undefined;
  }

  /** Takes a copy out of a tier and frees it; the bytes count as free at once. */
  #freeCopy(object: TieredObject, tier: Tier): Promise<void> {
    const copy = object[tier];
    if (copy === undefined) return Promise.resolve();
    object[tier] = undefined;
    (tier === "hot" ? this.#hotLru : this.#coldLru).delete(object);
    this.#credit(tier, object.size);
    return (tier === "hot" ? this.#hot : this.#cold).free(copy);
  }

  /** Reserves disk room for the write-through copy of a new object (store mode). */
  #reserve(object: TieredObject): void {
    const free = this.#options.coldCapacity - this.#usage.cold.bytes - this.#reserved;
    if (object.size > free) {
      throw new CapacityExceededError(
        `Cannot allocate ${object.size} bytes for object ${object.id}: ${free} of ${this.#options.coldCapacity} bytes free on disk`,
      );
    }
    this.#reserved += object.size;
    object.reserved = true;
  }

  #unreserve(object: TieredObject): void {
    if (!object.reserved) return;
    object.reserved = false;
    this.#reserved -= object.size;
  }

  #charge(tier: Tier, size: number): void {
    this.#usage[tier].bytes += size;
    this.#usage[tier].objects++;
  }

  #credit(tier: Tier, size: number): void {
    this.#usage[tier].bytes -= size;
    this.#usage[tier].objects--;
  }

  #track(task: Promise<void>): void {
    const tracked = task.catch((error) => this.#failed(error)).finally(() => {
      this.#tasks.delete(tracked);
    });
    this.#tasks.add(tracked);
  }

  /** Counts a failed move; reports those that are not a full tier or a closing store. */
  #failed(error: unknown): void {
    this.#counts.failures++;
    if (error instanceof CapacityExceededError || error instanceof ClosedError) return;
    const message = error instanceof PackiceError ? error.message : error;
    console.error("Packice: moving an object between tiers failed:", message);
  }

  #own(stored: StoredObject, action: string): TieredObject {
    this.#checkOpen(`${action} an object`);
    if (!(stored instanceof TieredObject) || !this.#handedOut.has(stored)) {
      throw new InvalidArgumentError(`Cannot ${action} an object: not from this store`);
    }
    return stored;
  }

  #checkOpen(action: string): void {
    if (this.#closing !== undefined) throw new ClosedError(`Cannot ${action}: store is closed`);
  }
}
