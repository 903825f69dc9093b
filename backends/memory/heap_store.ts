import type { Blob } from "../../core/blob.ts";
import type { BlobStore, RecoveredObject, StoredObject } from "../../core/blob_store.ts";
import { AlreadySealedError, ClosedError, InvalidArgumentError } from "../../core/errors.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { validateSize } from "../../core/validate.ts";
import { checkRange } from "../../core/range.ts";
import { blobSizes, checkRoom } from "./checks.ts";
import { HeapViews } from "./heap_views.ts";

/** Whether views can be detached one by one, which needs FFI permission. */
let detachable: boolean | undefined;

/**
 * A blob in an `ArrayBuffer` of this process: the fallback when the native
 * library is unavailable, so bytes cannot be shared with other processes.
 *
 * With FFI permission each view is an external buffer over the blob's
 * memory that {@link HeapBlob.closeView} detaches alone; without it views
 * are plain arrays that only seal (the writable ones) and free detach. A
 * view after seal is a copy of the bytes made for its reader (immutable where
 * the runtime allows), so nothing written into it changes the object.
 */
export class HeapBlob implements Blob {
  /** Size in bytes. */
  readonly size: number;
  #buffer: ArrayBuffer;
  readonly #views = new HeapViews();
  #sealed = false;
  #freed = false;

  /**
   * Allocates a zeroed blob.
   *
   * @param size Size in bytes.
   */
  constructor(size: number) {
    this.size = size;
    this.#buffer = new ArrayBuffer(size);
  }

  /** Whether {@link HeapBlob.seal} has run. */
  get sealed(): boolean {
    return this.#sealed;
  }

  /**
   * Opens a view of the bytes.
   *
   * @throws {ClosedError} When the blob is freed.
   */
  openView(): Uint8Array {
    this.#checkLive("open a view of");
    // No page of a heap buffer can be made read-only: a reader of sealed bytes gets a copy.
    if (this.#sealed) return this.#views.openCopy(this.#buffer);
    detachable ??= Deno.permissions.querySync({ name: "ffi" }).state === "granted";
    return detachable ? this.#views.open(this.#buffer) : new Uint8Array(this.#buffer);
  }

  /**
   * Detaches a view from {@link HeapBlob.openView}, when views are
   * detachable one by one (with FFI permission); views are detached at seal
   * (the writable ones) and at free in any case.
   *
   * @param view The view.
   */
  closeView(view: Uint8Array): void {
    this.#views.close(view);
  }

  /**
   * Copies `length` bytes from `offset` into a new array.
   *
   * @throws {InvalidArgumentError} When the range is outside the blob.
   * @throws {ClosedError} When the blob is freed.
   */
  read(offset: number, length: number): Promise<Uint8Array> {
    try {
      this.#checkLive("read");
      checkRange("read", offset, length, this.size, "the blob");
      return Promise.resolve(new Uint8Array(this.#buffer.slice(offset, offset + length)));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Copies `bytes` into the blob at `offset`.
   *
   * @throws {InvalidArgumentError} When the bytes do not fit inside the blob.
   * @throws {AlreadySealedError} When the blob is sealed.
   * @throws {ClosedError} When the blob is freed.
   */
  write(offset: number, bytes: Uint8Array): Promise<void> {
    try {
      this.#checkLive("write");
      if (this.#sealed) throw new AlreadySealedError("Cannot write blob: sealed");
      checkRange("write", offset, bytes.length, this.size, "the blob");
      new Uint8Array(this.#buffer).set(bytes, offset);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Refuses further writes and detaches every view opened so far; called by
   * the store. The bytes move to a new buffer without a copy.
   *
   * @throws {AlreadySealedError} When the blob is sealed already.
   * @throws {ClosedError} When the blob is freed.
   */
  seal(): void {
    this.#checkLive("seal");
    if (this.#sealed) throw new AlreadySealedError("Cannot seal blob: already sealed");
    this.#views.closeAll();
    this.#buffer = this.#buffer.transfer();
    this.#sealed = true;
  }

  /** Detaches every view and drops the bytes; called by the store. Idempotent. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.#views.closeAll();
    this.#buffer = this.#buffer.transfer(0);
  }

  #checkLive(what: string): void {
    if (this.#freed) throw new ClosedError(`Cannot ${what} blob: freed`);
  }
}

/** Options of {@link HeapBlobStore}. */
export interface HeapBlobStoreOptions {
  /** The most bytes of objects the store holds. */
  readonly capacity: number;
}

/**
 * Objects in `ArrayBuffer`s of this process: the pure-TypeScript fallback
 * when the native library is unavailable.
 *
 * @example
 * ```ts
 * import { HeapBlobStore } from "./heap_store.ts";
 * const store = new HeapBlobStore({ capacity: 1024 });
 * const info = { id: "a", state: "CREATING", size: 3, blobSizes: [3], meta: {}, createdAt: 0 } as const;
 * const stored = await store.allocate(info);
 * await stored.blobs[0]!.write(0, new Uint8Array([1, 2, 3]));
 * await store.seal(stored, info);
 * console.log(await stored.blobs[0]!.read(0, 3)); // Uint8Array(3) [ 1, 2, 3 ]
 * await store.close();
 * ```
 */
export class HeapBlobStore implements BlobStore {
  /** The most bytes this store may hold. */
  readonly capacity: number;
  readonly #blobs = new Set<HeapBlob>();
  #used = 0;
  #closed = false;

  /**
   * Creates an empty store.
   *
   * @param options The capacity.
   * @throws {InvalidArgumentError} When the capacity is not a non-negative integer.
   */
  constructor(options: HeapBlobStoreOptions) {
    this.capacity = validateSize(options.capacity, "capacity");
  }

  /** Bytes allocated to objects, sealed or not. */
  get used(): number {
    return this.#used;
  }

  /**
   * Allocates one zeroed buffer per blob for an object in state CREATING.
   *
   * @throws {CapacityExceededError} When the bytes do not fit.
   * @throws {InvalidArgumentError} When a blob size is invalid.
   * @throws {ClosedError} When the store is closed.
   */
  allocate(info: ObjectInfo): Promise<StoredObject> {
    try {
      if (this.#closed) throw new ClosedError("Cannot allocate: memory store is closed");
      const { sizes, total } = blobSizes(info);
      checkRoom(info, total, this.#used, this.capacity);
      const blobs = sizes.map((size) => new HeapBlob(size));
      for (const blob of blobs) this.#blobs.add(blob);
      this.#used += total;
      return Promise.resolve({ blobs });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Refuses further writes to every blob of the object.
   *
   * @throws {AlreadySealedError} When a blob is sealed already.
   */
  seal(stored: StoredObject, _info: ObjectInfo): Promise<void> {
    try {
      for (const blob of this.#own(stored)) blob.seal();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Frees the object's buffers, detaching every view. */
  free(stored: StoredObject): Promise<void> {
    try {
      for (const blob of this.#own(stored)) this.#free(blob);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Memory does not survive a restart: always empty. */
  recover(): Promise<RecoveredObject[]> {
    return Promise.resolve([]);
  }

  /** Frees every blob. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    for (const blob of this.#blobs) this.#free(blob);
    return Promise.resolve();
  }

  #free(blob: HeapBlob): void {
    if (!this.#blobs.delete(blob)) return;
    blob.free();
    this.#used -= blob.size;
  }

  #own(stored: StoredObject): HeapBlob[] {
    return stored.blobs.map((blob: Blob) => {
      if (blob instanceof HeapBlob) return blob;
      throw new InvalidArgumentError("Cannot use blob: it belongs to another store");
    });
  }
}
