import type { Blob } from "../../core/blob.ts";
import type { BlobStore, RecoveredObject, StoredObject } from "../../core/blob_store.ts";
import { CapacityExceededError, ClosedError, InvalidArgumentError } from "../../core/errors.ts";
import type { ObjectInfo } from "../../core/object.ts";
import type { BesideBytes } from "../../core/peer.ts";
import { validateSize } from "../../core/validate.ts";
import { check } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import { Mapping } from "../../native/mapping.ts";
import { takeAdoptable } from "./adoptable.ts";
import { blobSizes, checkRoom } from "./checks.ts";
import { FdCloser } from "./closer.ts";
import { AdoptedMemfdBlob } from "./adopted_blob.ts";
import { BesideBlob } from "./beside_blob.ts";
import { MemfdBlob, type MemfdContext } from "./memfd_blob.ts";
import { PooledMemfdBlob } from "./pooled_blob.ts";
import { SmallMemfdBlob } from "./small_blob.ts";
import { LARGE_BLOB, MemfdPool, POOL_IDLE_MS } from "../../native/memfd_pool.ts";
import type { PreparedMemfd } from "../../native/memfd_pool.ts";
import { Tasks } from "../../native/tasks.ts";

/** Options of {@link MemfdBlobStore}. */
export interface MemfdBlobStoreOptions {
  /** The most bytes of objects the store holds. */
  readonly capacity: number;
  /**
   * Bytes of memfds to keep ready for new objects, prepared on other threads
   * or recycled from freed objects. They count against `capacity` (the pool
   * only uses room objects do not, and gives it back when they need it), but
   * not against {@link MemfdBlobStore.used}. Default: a quarter of the
   * capacity, at most 256 MiB. 0 turns the pool off.
   */
  readonly poolBytes?: number;
  /**
   * Milliseconds without a new large blob or a freed one after which the
   * pool gives its memfds back, so that an idle process holds no memory
   * it does not use. Default 2000; 0 keeps them.
   */
  readonly poolIdleMs?: number;
}

const DEFAULT_POOL_BYTES = 256 * 1024 * 1024;

/**
 * Objects in memfds: memory that other processes can map after receiving a
 * blob's {@link MemfdBlob.fd} over a Unix socket, sealed against writes once
 * the object is sealed. Blobs of 256 KiB or less stay on the heap until
 * their fd is first asked for (see {@link MemfdBlob}). Needs the native
 * library.
 *
 * New blobs come from a pool of memfds prepared off the JS thread, or
 * recycled from freed large blobs that no other process received, so that
 * writing an object does not pay for page allocation, page by page.
 *
 * @example
 * ```ts ignore
 * import { loadNative } from "../../native/load.ts";
 * import { MemfdBlobStore } from "./memfd_store.ts";
 * const store = new MemfdBlobStore(loadNative()!, { capacity: 1 << 30 });
 * const info = { id: "a", state: "CREATING", size: 3, blobSizes: [3], meta: {}, createdAt: 0 } as const;
 * const stored = await store.allocate(info);
 * await stored.blobs[0]!.write(0, new Uint8Array([1, 2, 3]));
 * await store.seal(stored, info);
 * await store.close();
 * ```
 */
export class MemfdBlobStore implements BlobStore {
  /** The most bytes this store may hold. */
  readonly capacity: number;
  readonly #native: Native;
  readonly #tasks = new Tasks();
  readonly #context: MemfdContext;
  readonly #pool: MemfdPool;
  readonly #blobs = new Set<MemfdBlob>();
  #used = 0;
  /** Room lent for objects stored beside the store (see `PutsBeside`), not used yet. */
  #lent = 0;
  /** Gives back up to the bytes asked for of {@link MemfdBlobStore.#lent}; returns how many. */
  #reclaim: ((bytes: number) => number) | undefined;
  #closed = false;

  /**
   * Creates an empty store; its pool fills as objects are allocated.
   *
   * @param native The native library, from `loadNative()`.
   * @param options Capacity, pool size and how soon an idle pool empties.
   * @throws {InvalidArgumentError} When an option is not a non-negative integer.
   */
  constructor(native: Native, options: MemfdBlobStoreOptions) {
    this.capacity = validateSize(options.capacity, "capacity");
    const poolBytes = validateSize(
      options.poolBytes ?? Math.min(DEFAULT_POOL_BYTES, Math.floor(this.capacity / 4)),
      "poolBytes",
    );
    this.#native = native;
    this.#pool = new MemfdPool(
      native,
      poolBytes,
      () => this.capacity - this.#used - this.#lent,
      this.#tasks,
      validateSize(options.poolIdleMs ?? POOL_IDLE_MS, "poolIdleMs"),
    );
    this.#context = {
      native,
      tasks: this.#tasks,
      closer: new FdCloser(native, this.#tasks),
      pool: this.#pool,
    };
  }

  /** Bytes allocated to objects, sealed or not. */
  get used(): number {
    return this.#used;
  }

  /** Bytes of memfds prepared for new objects, ready or being made. */
  get pooled(): number {
    return this.#pool.bytes;
  }

  /** How many memfds are prepared for new objects, ready or being made. */
  get pooledMemfds(): number {
    return this.#pool.memfds;
  }

  /**
   * Allocates the blobs of an object in state CREATING: a memfd from the
   * pool for each large one, heap memory for each small one.
   *
   * @throws {CapacityExceededError} When the bytes do not fit, or the kernel has no memory.
   * @throws {InvalidArgumentError} When a blob size is invalid.
   * @throws {ClosedError} When the store is closed.
   */
  allocate(info: ObjectInfo): Promise<StoredObject> {
    try {
      this.#checkOpen();
      const { sizes, total } = blobSizes(info);
      this.#checkRoom(info, total);
      this.#used += total;
      this.#pool.trim(this.capacity - this.#used - this.#lent);
      if (sizes.every((size) => size <= LARGE_BLOB)) {
        // Small blobs live on the heap: nothing to wait for.
        let blobs: MemfdBlob[];
        try {
          blobs = sizes.map((size) => new SmallMemfdBlob(this.#context, size));
        } catch (error) {
          this.#used -= total;
          throw error;
        }
        for (const blob of blobs) this.#blobs.add(blob);
        return Promise.resolve({ blobs });
      }
      return this.#allocateLarge(info, sizes, total);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Allocates an object of one blob that holds `bytes`: a small one takes
   * over their memory when they span a whole `ArrayBuffer`, detaching
   * `bytes`; other objects are allocated and written as usual.
   *
   * @throws {CapacityExceededError} When the bytes do not fit.
   * @throws {InvalidArgumentError} When the object is not one blob of `bytes.length`.
   * @throws {ClosedError} When the store is closed.
   */
  async allocateFilled(info: ObjectInfo, bytes: Uint8Array): Promise<StoredObject> {
    const buffer = bytes.buffer;
    const size = bytes.length;
    if (
      size > LARGE_BLOB || size === 0 || !(buffer instanceof ArrayBuffer) || buffer.resizable ||
      bytes.byteOffset !== 0 || buffer.byteLength !== size
    ) {
      const stored = await this.allocate(info);
      await stored.blobs[0]!.write(0, bytes);
      return stored;
    }
    this.#checkOpen();
    const { sizes, total } = blobSizes(info);
    if (sizes.length !== 1 || total !== size) {
      throw new InvalidArgumentError(
        `Cannot fill object ${info.id} of ${sizes.length} blobs, ${total} bytes, with ${size} bytes`,
      );
    }
    this.#checkRoom(info, total);
    this.#used += total;
    this.#pool.trim(this.capacity - this.#used - this.#lent);
    const blob = new SmallMemfdBlob(this.#context, size, buffer.transfer());
    this.#blobs.add(blob);
    return { blobs: [blob] };
  }

  /** Allocates blobs of which some come from the pool, once counted in `used`. */
  async #allocateLarge(info: ObjectInfo, sizes: number[], total: number): Promise<StoredObject> {
    const blobs: MemfdBlob[] = [];
    try {
      for (const size of sizes) blobs.push(await this.#allocateBlob(size));
      this.#checkOpen();
    } catch (error) {
      // Freeing a blob gives back its own bytes; give back the rest here.
      this.#used -= total - blobs.reduce((sum, blob) => sum + blob.size, 0);
      await Promise.all(blobs.map((blob) => this.#freeBlob(blob)));
      if (error instanceof CapacityExceededError) {
        throw new CapacityExceededError(
          `Cannot allocate ${total} bytes for object ${info.id}: ${error.message}`,
          { cause: error },
        );
      }
      throw error;
    }
    return { blobs };
  }

  /**
   * Takes over memfds a writer in another process has filled, as the blobs
   * of a new object, without copying a byte: the writer never faults in
   * the daemon's memory, so it can write into pages it has ready. Each gets
   * the size seals now; at seal, `F_SEAL_FUTURE_WRITE`, and every seal once
   * the writer has unmapped it (see {@link MemfdBlob.seal}).
   *
   * @throws {InvalidArgumentError} When a fd is not an unsealed memfd of its blob's size.
   * @throws {CapacityExceededError} When the bytes do not fit.
   * @throws {ClosedError} When the store is closed.
   */
  allocateFrom(info: ObjectInfo, memfds: readonly number[]): Promise<StoredObject> {
    this.#checkOpen();
    const { sizes, total } = blobSizes(info);
    if (memfds.length !== sizes.length) {
      throw new InvalidArgumentError(
        `Cannot take over ${memfds.length} memfds for object ${info.id} of ${sizes.length} blobs`,
      );
    }
    this.#checkRoom(info, total);
    sizes.forEach((size, i) => takeAdoptable(this.#native, memfds[i]!, size));
    this.#used += total;
    this.#pool.trim(this.capacity - this.#used - this.#lent);
    const blobs = sizes.map((size, i) => {
      const blob = new AdoptedMemfdBlob(this.#context, size, memfds[i]!);
      this.#blobs.add(blob);
      return blob;
    });
    return Promise.resolve({ blobs });
  }

  /**
   * Lends up to `bytes` of free room for objects stored beside the store
   * (see `PutsBeside.lendRoom`): room its own objects do not get until
   * `reclaim` gives it back, which it asks for, as much as is missing, as
   * soon as one does not fit otherwise.
   *
   * @returns The bytes lent.
   */
  lendRoom(bytes: number, reclaim: (bytes: number) => number): number {
    if (this.#closed) return 0;
    this.#reclaim = reclaim;
    const lent = Math.max(0, Math.min(bytes, this.capacity - this.#used - this.#lent));
    this.#lent += lent;
    this.#pool.trim(this.capacity - this.#used - this.#lent);
    return lent;
  }

  /** Gives back `bytes` of room lent that no object took. */
  returnRoom(bytes: number): void {
    this.#lent = Math.max(0, this.#lent - bytes);
  }

  /**
   * A sealed object of one blob whose bytes are held beside the store, in
   * room it lent (see {@link MemfdBlobStore.lendRoom}); they are released
   * when it is freed.
   *
   * @throws {ClosedError} When the store is closed.
   */
  adoptBeside(info: ObjectInfo, bytes: BesideBytes): StoredObject {
    this.#checkOpen();
    const size = info.size;
    this.#lent = Math.max(0, this.#lent - size);
    this.#used += size;
    const blob = new BesideBlob(this.#context, size, bytes);
    this.#blobs.add(blob);
    return { blobs: [blob] };
  }

  /**
   * Seals every blob of the object against writes; see {@link MemfdBlob.seal}.
   *
   * @throws {AlreadySealedError} When a blob is sealed already.
   */
  async seal(stored: StoredObject, _info: ObjectInfo): Promise<void> {
    const blobs = this.#own(stored);
    // A blob handed out while creating drops our mapping in the background first.
    for (const blob of blobs) {
      const settling = blob.settled();
      if (settling !== undefined) await settling;
    }
    for (const blob of blobs) blob.seal();
  }

  /** Frees the object's memfds, detaching every view still open. */
  async free(stored: StoredObject): Promise<void> {
    await Promise.all(this.#own(stored).map((blob) => this.#freeBlob(blob)));
  }

  /**
   * Frees an object stored beside the store (see
   * {@link MemfdBlobStore.adoptBeside}) at once: nothing about it waits.
   *
   * @returns False for any other object (nothing is freed).
   */
  freeNow(stored: StoredObject): boolean {
    const blob = stored.blobs.length === 1 ? stored.blobs[0] : undefined;
    if (!(blob instanceof BesideBlob)) return false;
    if (this.#blobs.delete(blob)) {
      this.#used -= blob.size;
      blob.freeNow();
    }
    return true;
  }

  /** Memory does not survive a restart: always empty. */
  recover(): Promise<RecoveredObject[]> {
    return Promise.resolve([]);
  }

  /** Frees every blob and the pool, and waits for work on other threads. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#takeBack();
      this.#pool.close();
      await Promise.all([...this.#blobs].map((blob) => this.#freeBlob(blob)));
      this.#context.closer.flush();
    }
    await this.#tasks.drain();
  }

  async #allocateBlob(size: number): Promise<MemfdBlob> {
    const blob = size > LARGE_BLOB
      ? this.#adopt(await this.#pool.obtain(size), size)
      : new SmallMemfdBlob(this.#context, size);
    this.#blobs.add(blob);
    return blob;
  }

  /** Cuts a prepared memfd to the blob's size and wraps it. */
  #adopt(prepared: PreparedMemfd, size: number): MemfdBlob {
    if (prepared.capacity !== size) {
      const result = this.#native.symbols.pk_ftruncate(prepared.fd, BigInt(size));
      if (result < 0) this.#pool.release(prepared);
      check(result, "ftruncate");
    }
    const mapping = new Mapping(this.#native, prepared.pointer, prepared.capacity, size);
    return new PooledMemfdBlob(this.#context, size, prepared.fd, mapping, prepared.stale);
  }

  async #freeBlob(blob: MemfdBlob): Promise<void> {
    if (!this.#blobs.delete(blob)) return;
    // First, so that the pool has the room to take the memfd back.
    this.#used -= blob.size;
    await blob.free();
  }

  #own(stored: StoredObject): MemfdBlob[] {
    return stored.blobs.map((blob: Blob) => {
      if (blob instanceof MemfdBlob) return blob;
      throw new InvalidArgumentError("Cannot use blob: it belongs to another store");
    });
  }

  /**
   * Throws unless `total` more bytes fit; room lent beside is taken back
   * first when they would fit without it.
   *
   * @throws {CapacityExceededError} When they do not fit.
   */
  #checkRoom(info: ObjectInfo, total: number): void {
    const missing = this.#used + this.#lent + total - this.capacity;
    if (this.#lent > 0 && missing > 0) this.#takeBack(missing);
    checkRoom(info, total, this.#used + this.#lent, this.capacity);
  }

  /** Takes back up to `bytes` of the room lent beside (all of it by default). */
  #takeBack(bytes = Infinity): void {
    const given = this.#reclaim?.(Math.min(bytes, this.#lent)) ?? 0;
    this.#lent = Math.max(0, this.#lent - given);
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError("Cannot allocate: memory store is closed");
  }
}
