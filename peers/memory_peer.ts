import { createMemoryBlobStore, type MemoryBlobStore } from "../backends/memory/mod.ts";
import { poolMetrics } from "../backends/memory/create.ts";
import { MemoryLeaseStore } from "../backends/memory_lease_store.ts";
import { BasePeer, type PeerOptions } from "../core/base_peer.ts";
import { validateSize } from "../core/validate.ts";

/** The default capacity of a peer: 4 GiB. */
export const DEFAULT_CAPACITY = 4 * 1024 ** 3;

/** Options of {@link MemoryPeer}; see `PeerOptions.mode` for what a full peer does. */
export interface MemoryPeerOptions extends PeerOptions {
  /** The most bytes the peer holds. Default {@link DEFAULT_CAPACITY}. */
  readonly capacity?: number;
  /**
   * Milliseconds without a new large object or a freed one after which the
   * memory prepared for new objects is given back. Default 2000.
   */
  readonly poolIdleMs?: number;
}

/**
 * A peer that keeps objects in memory: each blob a sealed memfd that other
 * processes can map, or plain memory when the native library is unavailable.
 * With `mode: "cache"` a full peer drops its least recently read objects
 * that no lease holds to make room; by default (`"store"`) it refuses new
 * objects with a `CapacityExceededError` instead.
 *
 * @example Create, seal and read an object
 * ```ts
 * import { Access, MemoryPeer } from "@packice/packice";
 * await using peer = new MemoryPeer({ capacity: 1 << 20 });
 * const { lease, blobs } = await peer.acquire("greeting", Access.CREATE, { size: 5 });
 * await blobs[0]!.write(0, new TextEncoder().encode("hello"));
 * await peer.seal(lease.id);
 * await peer.release(lease.id);
 * console.log((await peer.stat("greeting")).state); // "SEALED"
 * ```
 */
export class MemoryPeer extends BasePeer {
  readonly #blobs: MemoryBlobStore;

  /**
   * Creates the instance.
   *
   * @param options Capacity, mode, lease store and clock.
   */
  constructor(options: MemoryPeerOptions = {}) {
    const capacity = validateSize(options.capacity ?? DEFAULT_CAPACITY, "capacity");
    const blobs = createMemoryBlobStore({
      capacity,
      ...(options.poolIdleMs === undefined ? {} : { poolIdleMs: options.poolIdleMs }),
    });
    super({
      blobs,
      leases: options.leases ?? new MemoryLeaseStore(options.clock),
      ...options,
    });
    this.#blobs = blobs;
  }

  /**
   * Figures for a metrics endpoint beyond the peer's stats: the bytes and
   * memfds prepared for new objects (`memory_pool_bytes`,
   * `memory_pool_memfds`), which count against no object, and the lease
   * store's figures; see `Peer.metrics`.
   */
  override async metrics(): Promise<Readonly<Record<string, number>>> {
    return { ...await super.metrics(), ...poolMetrics(this.#blobs) };
  }
}
