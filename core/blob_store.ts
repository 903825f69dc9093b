import type { Blob } from "./blob.ts";
import type { ObjectInfo } from "./object.ts";
import type { BesideBytes } from "./peer.ts";

/** The bytes of one object in a backend: a blob per entry of its `blobSizes`. */
export interface StoredObject {
  /** The blobs, in order. */
  readonly blobs: readonly Blob[];
}

/** An object a store found again on start, sealed and whole. */
export interface RecoveredObject {
  /** What is known of it. */
  readonly info: ObjectInfo;
  /** Its bytes. */
  readonly stored: StoredObject;
}

/** Where the bytes of objects live: memory, files, or another tier. */
export interface BlobStore {
  /** Bytes allocated, sealed or not. */
  readonly used: number;
  /** The most bytes this store may hold. */
  readonly capacity: number;
  /**
   * Allocates blobs for a new object in state CREATING.
   *
   * @throws {CapacityExceededError} When the bytes do not fit.
   */
  allocate(info: ObjectInfo): Promise<StoredObject>;
  /**
   * Takes over memfds another process has filled as the blobs of a new
   * object in state CREATING, one per blob; for stores that keep blobs in
   * memfds. When it throws, the memfds are still the caller's.
   *
   * @throws {InvalidArgumentError} When a fd is not an unsealed memfd of its blob's size.
   * @throws {CapacityExceededError} When the bytes do not fit.
   */
  allocateFrom?(info: ObjectInfo, memfds: readonly number[]): Promise<StoredObject>;
  /**
   * Allocates a new object of one blob in state CREATING that holds
   * `bytes` already, its whole size, keeping their memory instead of a
   * copy where it can: the caller gives `bytes` up, which may be detached.
   * Optional; without it, the object is allocated and written.
   *
   * @throws {CapacityExceededError} When the bytes do not fit.
   */
  allocateFilled?(info: ObjectInfo, bytes: Uint8Array): Promise<StoredObject>;
  /**
   * Optional: lends up to `bytes` of free room for objects stored beside the
   * peer (see `PutsBeside.lendRoom`); `reclaim` gives back up to the bytes
   * the store asks for when it needs room, and returns how many it gave.
   *
   * @returns The bytes lent.
   */
  lendRoom?(bytes: number, reclaim: (bytes: number) => number): number;
  /** Optional, with `lendRoom`: gives back `bytes` of room lent that no object took. */
  returnRoom?(bytes: number): void;
  /**
   * Optional, with `lendRoom`: a sealed object of one blob whose bytes are
   * held beside the store, in room it lent; they are released when freed.
   *
   * @throws {ClosedError} When the store is closed.
   */
  adoptBeside?(info: ObjectInfo, bytes: BesideBytes): StoredObject;
  /** Makes the bytes immutable and durable as far as this store goes. */
  seal(stored: StoredObject, info: ObjectInfo): Promise<void>;
  /** Frees the bytes. Called once, after every view has been closed. */
  free(stored: StoredObject): Promise<void>;
  /**
   * Optional: frees the bytes at once, as {@link BlobStore.free} would, when
   * nothing about it waits (an object stored beside the store, say).
   *
   * @returns False when it cannot (nothing is freed): call `free`.
   */
  freeNow?(stored: StoredObject): boolean;
  /** Sealed objects kept from an earlier run; unfinished ones are removed. */
  recover(): Promise<RecoveredObject[]>;
  /**
   * Releases what the store holds in this process: memory is freed, while a
   * durable store keeps its sealed objects for the next {@link BlobStore.recover}.
   */
  close(): Promise<void>;
}
