import { FileBlobStore } from "../backends/fs/mod.ts";
import { NativeFileIo } from "../backends/fs/native_io.ts";
import { createMemoryBlobStore, type MemoryBlobStore } from "../backends/memory/mod.ts";
import { poolMetrics } from "../backends/memory/create.ts";
import { MemoryLeaseStore } from "../backends/memory_lease_store.ts";
import { BasePeer, type BasePeerOptions, type PeerOptions } from "../core/base_peer.ts";
import { systemClock } from "../core/clock.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { validateMode } from "../core/mode.ts";
import { Access } from "../core/lease.ts";
import type { ListPage, ListPageOptions } from "../core/list_page.ts";
import type { ObjectInfo } from "../core/object.ts";
import type { Acquired, AcquireOptions, PeerStats } from "../core/peer.ts";
import { validateSize } from "../core/validate.ts";
import { loadNative } from "../native/load.ts";
import { TieredBlobStore, type TierMode, type TierStats } from "./tiered/tiered_store.ts";

export type { Tier } from "./tiered/tiered_object.ts";
export type { TierMode, TierStats, TierUsage } from "./tiered/tiered_store.ts";

/** The default memory budget of a tiered peer: 1 GiB. */
export const DEFAULT_HOT_CAPACITY = 1024 ** 3;
/** The default disk budget of a tiered peer: 16 GiB. */
export const DEFAULT_COLD_CAPACITY = 16 * 1024 ** 3;

const DEFAULT_POOL_BYTES = 256 * 1024 ** 2;

/** Options of {@link TieredPeer.open}. */
export interface TieredPeerOptions extends PeerOptions {
  /** The data directory of the disk tier; created when missing. */
  readonly dir: string;
  /** Bytes the memory tier may hold. Default {@link DEFAULT_HOT_CAPACITY}. */
  readonly hotCapacity?: number;
  /** Bytes the disk tier may hold. Default {@link DEFAULT_COLD_CAPACITY}. */
  readonly coldCapacity?: number;
  /**
   * Where what the operator should know goes: each sealed object found
   * damaged on disk at open (and removed), each move between tiers that
   * failed. By default, only the failed moves, to stderr.
   */
  readonly warn?: (message: string) => void;
  /**
   * When both tiers are full: `"store"` refuses new objects with a
   * `CapacityExceededError` and writes every object through to disk at seal,
   * so nothing sealed is lost in a crash; `"cache"` drops the least recently
   * used idle objects from disk, and keeps objects only in memory until they
   * are demoted. Default `"cache"`.
   */
  readonly mode?: TierMode;
  /** Fraction of the memory budget above which demotion starts. Default 0.9. */
  readonly highWatermark?: number;
  /** Fraction of the memory budget that demotion brings memory down to. Default 0.75. */
  readonly lowWatermark?: number;
  /**
   * Reads from disk within {@link TieredPeerOptions.promoteWindow} that copy an
   * object back into memory: 1 promotes on every read from disk, 0 never.
   * Default 2, so that one pass over cold data does not push the working set out.
   */
  readonly promoteAfterReads?: number;
  /** Milliseconds within which those reads must fall. Default 60 000. */
  readonly promoteWindow?: number;
  /**
   * Bytes of memory kept ready for new objects on top of the memory budget,
   * made on another thread so that `create` does not pay for page allocation.
   * Default: a quarter of the memory budget, at most 256 MiB.
   */
  readonly poolBytes?: number;
  /**
   * Milliseconds without a new object in memory or a freed one after which
   * that memory is given back. Default 2000.
   */
  readonly poolIdleMs?: number;
}

/**
 * A peer over two tiers: memory (hot) over a data directory (cold), each with
 * a byte budget, that keeps the recently used objects in memory and the rest
 * on disk, behind the same lifecycle and client API as every peer.
 *
 * - A new object is written to memory when it fits there now, else straight
 *   to disk, its files made in the background before its first write: `create`
 *   waits neither for memory to be freed nor for the disk.
 * - Above the high watermark, the least recently used objects that no lease
 *   holds are demoted in the background, down to the low watermark: copied
 *   from mapped memory straight into files, sealed and flushed on disk, and
 *   only then freed in memory. An object under a lease is never moved or
 *   dropped, so views into its memory stay valid until the lease ends.
 * - With the native library, files are created, written and flushed on
 *   worker threads at the lowest CPU priority, so that a stream of writes to
 *   disk does not keep the JS thread, and `create`, waiting for a core.
 * - Reads of objects on disk are served from their files; the second read
 *   within a minute copies the object back into memory in the background
 *   (see {@link TieredPeerOptions.promoteAfterReads}), keeping the disk copy
 *   so it can be demoted again without I/O.
 * - Objects on disk survive a restart; unfinished objects and demotions are
 *   removed when the peer opens. A demotion frees memory only after the disk
 *   copy is whole, so a crash leaves the object whole in one tier or the
 *   other; objects only in memory are lost with the process, except in
 *   `"store"` mode, which writes each object through to disk before `seal`
 *   resolves.
 * - {@link ObjectInfo.tier} says which tier serves an object: `"hot"` when it
 *   has a copy in memory, else `"cold"`.
 *
 * @example Memory over disk
 * ```ts ignore
 * import { connect, TieredPeer } from "@packice/packice";
 * const dir = await Deno.makeTempDir();
 * await using peer = await TieredPeer.open({ dir, hotCapacity: 64 << 20, coldCapacity: 1 << 30 });
 * await using client = await connect(peer);
 * const id = await client.put(new Uint8Array(1 << 20));
 * console.log((await client.stat(id)).tier); // "hot"
 * console.log((await peer.tierStats()).hot.bytes); // 1048576
 * ```
 */
export class TieredPeer extends BasePeer {
  readonly #store: TieredBlobStore;
  readonly #hot: MemoryBlobStore;

  private constructor(
    store: TieredBlobStore,
    hot: MemoryBlobStore,
    options: Omit<BasePeerOptions, "blobs">,
  ) {
    super({ ...options, blobs: store });
    this.#store = store;
    this.#hot = hot;
    store.attach({
      isIdle: (object) => this.isIdle(object.id, object),
      drop: (object) => this.drop(object.id, object),
    });
  }

  /**
   * Opens a tiered peer and finds the objects on disk from an earlier run.
   *
   * @param options The data directory, budgets, mode and policies.
   * @returns The peer, with the objects on disk in lookups.
   * @throws {InvalidArgumentError} When an option is out of range.
   */
  static async open(options: TieredPeerOptions): Promise<TieredPeer> {
    const hotCapacity = validateSize(options.hotCapacity ?? DEFAULT_HOT_CAPACITY, "hotCapacity");
    const coldCapacity = validateSize(
      options.coldCapacity ?? DEFAULT_COLD_CAPACITY,
      "coldCapacity",
    );
    const mode = validateMode(options.mode, "cache");
    const high = fraction(options.highWatermark ?? 0.9, "highWatermark");
    const low = fraction(options.lowWatermark ?? 0.75, "lowWatermark");
    if (low > high) {
      throw new InvalidArgumentError(
        `Invalid lowWatermark: ${low} is above highWatermark ${high}`,
      );
    }
    const promoteAfterReads = validateSize(options.promoteAfterReads ?? 2, "promoteAfterReads");
    const promoteWindow = validateSize(options.promoteWindow ?? 60_000, "promoteWindow");
    const poolBytes = validateSize(
      options.poolBytes ?? Math.min(DEFAULT_POOL_BYTES, Math.floor(hotCapacity / 4)),
      "poolBytes",
    );
    const native = loadNative();
    // Off the JS thread's CPU: a stream to disk would keep it waiting to run.
    const files = native === undefined ? undefined : NativeFileIo.of(native).opener();
    const cold = new FileBlobStore({
      dir: options.dir,
      capacity: Number.MAX_SAFE_INTEGER,
      ...(files === undefined ? {} : { files }),
      ...(options.warn === undefined ? {} : { warn: options.warn }),
    });
    // The pool gets room of its own: with memory at its budget, as it is while
    // demotion runs, new objects still find memory made ready on another thread.
    const hot = createMemoryBlobStore({
      capacity: hotCapacity + poolBytes,
      poolBytes,
      ...(options.poolIdleMs === undefined ? {} : { poolIdleMs: options.poolIdleMs }),
    });
    const clock = options.clock ?? systemClock;
    const store = new TieredBlobStore({
      hot,
      cold,
      hotCapacity,
      coldCapacity,
      mode,
      highWatermark: Math.floor(hotCapacity * high),
      lowWatermark: Math.floor(hotCapacity * low),
      promoteAfterReads,
      promoteWindow,
      clock,
      warn: options.warn,
    });
    const peer = new TieredPeer(store, hot, {
      leases: options.leases ?? new MemoryLeaseStore(clock),
      clock,
      ...(options.sweepInterval === undefined ? {} : { sweepInterval: options.sweepInterval }),
      ...(options.node === undefined ? {} : { node: options.node }),
      ...(options.digest === undefined ? {} : { digest: options.digest }),
    });
    await peer.recover();
    return peer;
  }

  /**
   * Acquires a lease, as every peer does. A READ lease also makes the object
   * the most recently used, and counts as a hit (in memory) or a miss (on
   * disk) that may start its promotion. The object's info says its tier.
   */
  override async acquire(
    objectId: string | undefined,
    access: Access,
    options?: AcquireOptions,
  ): Promise<Acquired> {
    const acquired = await super.acquire(objectId, access, options);
    const object = this.#store.current(acquired.object.id);
    if (object === undefined) return acquired;
    const tier = access === Access.READ ? this.#store.noteRead(object) : object.tier;
    return { ...acquired, object: { ...acquired.object, tier } };
  }

  /**
   * None: an object's bytes move between memory and disk while it stays in
   * lookups, and each read is told its tier, so its reads are never served
   * beside this peer's leases (a memfd held there would outlive its tier).
   */
  override readsBeside(): undefined {
    return undefined;
  }

  /** What is known of an object, with the tier that serves it. */
  override async stat(objectId: string): Promise<ObjectInfo> {
    return this.#withTier(await super.stat(objectId));
  }

  /** Every object in lookups, each with the tier that serves it. */
  override async list(): Promise<ObjectInfo[]> {
    return (await super.list()).map((info) => this.#withTier(info));
  }

  /** A page of the list, each object with the tier that serves it. */
  override async listPage(options?: ListPageOptions): Promise<ListPage> {
    const page = await super.listPage(options);
    return { ...page, objects: page.objects.map((info) => this.#withTier(info)) };
  }

  /** Counts of objects, leases and bytes, with hits, misses and evictions (drops from disk). */
  override async stats(): Promise<PeerStats> {
    const tiers = this.#store.stats();
    return {
      ...await super.stats(),
      hits: tiers.hits,
      misses: tiers.misses,
      evictions: tiers.drops,
    };
  }

  /**
   * Bytes and objects in each tier, and counts of demotions, promotions and
   * drops.
   *
   * @returns A snapshot of the counters.
   */
  tierStats(): Promise<TierStats> {
    return Promise.resolve(this.#store.stats());
  }

  /**
   * The tier figures for a metrics endpoint: `tier_hot_bytes`,
   * `tier_demotions_total` and the like, the memory prepared for new
   * objects (`memory_pool_bytes`, `memory_pool_memfds`), and the lease
   * store's figures; see `Peer.metrics`.
   */
  override async metrics(): Promise<Readonly<Record<string, number>>> {
    const stats = await this.tierStats();
    return {
      ...await super.metrics(),
      tier_hot_bytes: stats.hot.bytes,
      tier_hot_capacity_bytes: stats.hot.capacity,
      tier_hot_objects: stats.hot.objects,
      tier_cold_bytes: stats.cold.bytes,
      tier_cold_capacity_bytes: stats.cold.capacity,
      tier_cold_objects: stats.cold.objects,
      tier_demotions_total: stats.demotions,
      tier_demoting_bytes: stats.demoting,
      tier_demoted_bytes_total: stats.demotedBytes,
      tier_promotions_total: stats.promotions,
      tier_promoted_bytes_total: stats.promotedBytes,
      tier_drops_total: stats.drops,
      tier_move_failures_total: stats.failures,
      ...poolMetrics(this.#hot),
    };
  }

  /**
   * Resolves once the demotions and promotions under way, and those they
   * lead to, have finished: for tests, benchmarks and orderly shutdowns.
   */
  settled(): Promise<void> {
    return this.#store.settled();
  }

  #withTier(info: ObjectInfo): ObjectInfo {
    const object = this.#store.current(info.id);
    return object === undefined ? info : { ...info, tier: object.tier };
  }
}

function fraction(value: number, name: string): number {
  if (typeof value !== "number" || !(value >= 0 && value <= 1)) {
    throw new InvalidArgumentError(`Invalid ${name}: ${value} (a fraction from 0 to 1)`);
  }
  return value;
}
