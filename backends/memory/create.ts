import { loadNative } from "../../native/load.ts";
import { HeapBlobStore } from "./heap_store.ts";
import { MemfdBlobStore } from "./memfd_store.ts";
import type { MemfdBlobStoreOptions } from "./memfd_store.ts";

/** Options of {@link createMemoryBlobStore}. */
export type MemoryBlobStoreOptions = MemfdBlobStoreOptions;

/** A store of objects in memory: memfds when the native library loads, else the heap. */
export type MemoryBlobStore = MemfdBlobStore | HeapBlobStore;

/**
 * Creates the memory store: a {@link MemfdBlobStore}, whose blobs other
 * processes can map, when the native library loads (building it if needed;
 * see `loadNative()`), else a {@link HeapBlobStore}, after the loader's one
 * warning that zero-copy sharing between processes is unavailable.
 * `PACKICE_NATIVE_LIB=none` chooses the heap without a warning. When Packice
 * is imported over the network, `await ensureNative()` first so that the
 * library can be built.
 *
 * @param options Capacity, and the pool size of the memfd store.
 * @returns The store.
 * @throws {InvalidArgumentError} When an option is not a non-negative integer.
 * @throws {NativeUnavailableError} When `PACKICE_NATIVE_LIB` names a library that does not load.
 *
 * @example
 * ```ts ignore
 * import { createMemoryBlobStore } from "./create.ts";
 * const store = createMemoryBlobStore({ capacity: 1 << 30 });
 * console.log(store.constructor.name); // "MemfdBlobStore" on Linux with a C compiler
 * await store.close();
 * ```
 */
export function createMemoryBlobStore(options: MemoryBlobStoreOptions): MemoryBlobStore {
  const native = loadNative();
  return native ? new MemfdBlobStore(native, options) : new HeapBlobStore(options);
}

/**
 * The figures of a memory store's pool of prepared memfds, for
 * `Peer.metrics()`: `memory_pool_bytes` and `memory_pool_memfds` (both 0
 * on the heap, which has no pool).
 *
 * @param store The store.
 * @returns The figures by metric name.
 */
export function poolMetrics(store: MemoryBlobStore): Record<string, number> {
  const memfds = store instanceof MemfdBlobStore;
  return {
    memory_pool_bytes: memfds ? store.pooled : 0,
    memory_pool_memfds: memfds ? store.pooledMemfds : 0,
  };
}
