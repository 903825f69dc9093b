/**
 * Object bytes in memory. {@link MemfdBlobStore} keeps each blob in a memfd
 * (a small one from the moment its fd is first asked for) that other
 * processes can map and that is sealed against writes with the object;
 * {@link HeapBlobStore} is the pure-TypeScript fallback.
 * {@link createMemoryBlobStore} picks one.
 *
 * @module
 */
export { createMemoryBlobStore } from "./create.ts";
export type { MemoryBlobStore, MemoryBlobStoreOptions } from "./create.ts";
export { HeapBlob, HeapBlobStore } from "./heap_store.ts";
export type { HeapBlobStoreOptions } from "./heap_store.ts";
export { MemfdBlob } from "./memfd_blob.ts";
export { MemfdBlobStore } from "./memfd_store.ts";
export type { MemfdBlobStoreOptions } from "./memfd_store.ts";
