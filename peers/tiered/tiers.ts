/**
 * The two tiers of a tiered store and what they hold: budgets, usage,
 * recency, the room promised to write-through copies, and the steps that
 * every placement and move is made of (charge, copy, make room, free).
 */
import type { BlobStore, StoredObject } from "../../core/blob_store.ts";
import { CapacityExceededError, ClosedError } from "../../core/errors.ts";
import { Lru } from "../../core/lru.ts";
import { copyObject } from "./copy.ts";
import type { Tier, TieredObject } from "./tiered_object.ts";
import type { TieredBlobStoreOptions, TierHost } from "./tiered_store.ts";

interface Usage {
  bytes: number;
  objects: number;
}

/** The counts of moves and reads that {@link TierStats} reports. */
export interface MoveCounts {
  demotions: number;
  demotedBytes: number;
  promotions: number;
  promotedBytes: number;
  drops: number;
  hits: number;
  misses: number;
  failures: number;
}

/** The state the store and its mover share, and the steps both take on it. */
export class Tiers {
  readonly hot: BlobStore;
  readonly cold: BlobStore;
  readonly options: TieredBlobStoreOptions;
  readonly hotLru = new Lru<TieredObject>();
  readonly coldLru = new Lru<TieredObject>();
  readonly usage: Record<Tier, Usage> = {
    hot: { bytes: 0, objects: 0 },
    cold: { bytes: 0, objects: 0 },
  };
  /** Disk bytes promised to write-through copies of objects being written to memory. */
  reserved = 0;
  readonly counts: MoveCounts = {
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
  /** The peer that owns the lifecycle, once attached. */
  host: TierHost | undefined;
  /** Set once the store closes: no move starts after. */
  closing: Promise<void> | undefined;

  constructor(options: TieredBlobStoreOptions) {
    this.hot = options.hot;
    this.cold = options.cold;
    this.options = options;
  }

  /** Whether memory has room for `size` more bytes now. */
  fitsHot(size: number): boolean {
    return size <= this.options.hotCapacity - this.usage.hot.bytes;
  }

  /**
   * Makes a copy of a sealed object in tier `to` from its copy in the other
   * tier, and adds it to the object once sealed there. The caller has
   * charged the room in `to`; it is given back when the copy fails.
   */
  async copy(object: TieredObject, to: Tier): Promise<void> {
    const [store, source] = to === "hot" ? [this.hot, object.cold!] : [this.cold, object.hot!];
    let copy: StoredObject | undefined;
    try {
      copy = await store.allocate(object.info);
      await copyObject(source, copy);
      await store.seal(copy, object.info);
    } catch (error) {
      this.credit(to, object.size);
      if (copy !== undefined) await store.free(copy).catch(() => {});
      throw error;
    }
    object[to] = copy;
  }

  /** Marks `task` as the one move of `object` under way: no other starts, and freeing waits for it. */
  move(object: TieredObject, task: Promise<void>): Promise<void> {
    const moving = task.finally(() => {
      object.moving = undefined;
    });
    object.moving = moving;
    return moving;
  }

  /**
   * Makes room on disk for a copy of `object` and charges it, in the same
   * turn as the last check. Cache mode drops the least recently used idle
   * objects there; store mode never drops.
   *
   * @throws {CapacityExceededError} When the room cannot be made.
   */
  async claimCold(object: TieredObject): Promise<void> {
    const { mode, coldCapacity } = this.options;
    for (let tries = this.coldLru.size; this.coldFree < object.size; tries--) {
      const victim = mode === "cache" && tries >= 0 && object.size <= coldCapacity
        ? this.idleLeast(this.coldLru)
        : undefined;
      if (victim === undefined) {
        throw new CapacityExceededError(
          `Cannot place ${object.size} bytes of object ${object.id}: ${this.coldFree} of ${coldCapacity} bytes free on disk and ${
            mode === "store" ? "store mode drops nothing" : "no idle object to drop"
          }`,
        );
      }
      await this.#dropCold(victim);
    }
    this.charge("cold", object.size);
  }

  /** Frees a disk copy: the whole object when that is its only copy, else just the copy. */
  async #dropCold(object: TieredObject): Promise<void> {
    if (object.hot !== undefined) {
      await this.freeCopy(object, "cold");
      return;
    }
    object.dropping = true;
    try {
      if (await this.host!.drop(object)) this.counts.drops++;
      else this.coldLru.refresh(object);
    } finally {
      object.dropping = false;
    }
  }

  /**
   * The least recently used object of `lru` that is idle and not busy. Objects
   * held by leases are in use: they become the most recently used.
   */
  idleLeast(lru: Lru<TieredObject>): TieredObject | undefined {
    let left = lru.size;
    for (const object of lru) {
      if (left-- <= 0) return undefined;
      if (object.busy) continue;
      if (this.host!.isIdle(object)) return object;
      lru.refresh(object);
    }
    return undefined;
  }

  /** Takes a copy out of a tier and frees it; the bytes count as free at once. */
  freeCopy(object: TieredObject, tier: Tier): Promise<void> {
    const copy = object[tier];
    if (copy === undefined) return Promise.resolve();
    object[tier] = undefined;
    (tier === "hot" ? this.hotLru : this.coldLru).delete(object);
    this.credit(tier, object.size);
    return (tier === "hot" ? this.hot : this.cold).free(copy);
  }

  /** Reserves disk room for the write-through copy of a new object (store mode). */
  reserve(object: TieredObject): void {
    const free = this.coldFree;
    if (object.size > free) {
      throw new CapacityExceededError(
        `Cannot allocate ${object.size} bytes for object ${object.id}: ${free} of ${this.options.coldCapacity} bytes free on disk`,
      );
    }
    this.holdRoom(object);
  }

  /** Counts disk room for the write-through copy of `object` as promised, without a check. */
  holdRoom(object: TieredObject): void {
    this.reserved += object.size;
    object.reserved = true;
  }

  /** Disk bytes neither used nor promised to a write-through copy. */
  get coldFree(): number {
    return this.options.coldCapacity - this.usage.cold.bytes - this.reserved;
  }

  unreserve(object: TieredObject): void {
    if (!object.reserved) return;
    object.reserved = false;
    this.reserved -= object.size;
  }

  charge(tier: Tier, size: number): void {
    this.usage[tier].bytes += size;
    this.usage[tier].objects++;
  }

  credit(tier: Tier, size: number): void {
    this.usage[tier].bytes -= size;
    this.usage[tier].objects--;
  }

  /** Runs `task` in the background: {@link settled} waits for it, a failure is counted. */
  track(task: Promise<void>): void {
    const tracked = task.catch((error) => this.failed(error)).finally(() => {
      this.#tasks.delete(tracked);
    });
    this.#tasks.add(tracked);
  }

  /** Resolves once the tasks under way, and those they start, are done. */
  async settled(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
  }

  /** Counts a failed move; reports those that are not a full tier or a closing store. */
  failed(error: unknown): void {
    this.counts.failures++;
    if (error instanceof CapacityExceededError || error instanceof ClosedError) return;
    const message = error instanceof Error ? error.message : String(error);
    const warn = this.options.warn ?? ((line: string) => console.error(`Packice: ${line}`));
    warn(`Moving an object between tiers failed, it stays where it was: ${message}`);
  }
}
