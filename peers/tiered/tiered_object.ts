import type { Blob } from "../../core/blob.ts";
import type { StoredObject } from "../../core/blob_store.ts";
import { ClosedError } from "../../core/errors.ts";
import type { ObjectInfo } from "../../core/object.ts";

/** The tiers of a tiered peer: memory, and disk below it. */
export type Tier = "hot" | "cold";

/**
 * The bytes of one incarnation of an object in a tiered store: a copy in the
 * hot tier, in the cold tier, or in both (a clean hot copy of an object
 * already on disk, or a copy being made). Every copy of a sealed object holds
 * the same bytes, so whichever serves a read is right.
 */
export class TieredObject implements StoredObject {
  /** The object id. */
  readonly id: string;
  /** Total bytes of its blobs. */
  readonly size: number;
  /** Blobs that read and write whichever copy serves now. */
  readonly blobs: readonly TieredBlob[];
  /** What is known of the object: as created, then as sealed. */
  info: ObjectInfo;
  /** The copy in memory. */
  hot: StoredObject | undefined;
  /** The copy on disk. */
  cold: StoredObject | undefined;
  /**
   * The files of a new object placed on disk, being made: uses of its blobs
   * wait for them, and fail as they do.
   */
  pending: Promise<void> | undefined;
  /** Whether the copy it was written into is sealed. */
  written = false;
  /** Sealed, with every copy it needs: in the recency orders, a candidate for moves. */
  sealed = false;
  /** Freed: out of every order, its copies freed or about to be. */
  freed = false;
  /** Whether room for its write-through copy is reserved in the cold tier. */
  reserved = false;
  /** A copy from one tier to the other under way; freeing waits for it. */
  moving: Promise<void> | undefined;
  /** Being dropped from lookups. */
  dropping = false;
  /** Reads served from the cold tier since {@link TieredObject.coldSince}. */
  coldReads = 0;
  /** When the current window of cold reads began. */
  coldSince: number | undefined;

  /** @param info The object as created. */
  constructor(info: ObjectInfo) {
    this.id = info.id;
    this.size = info.size;
    this.info = info;
    this.blobs = info.blobSizes.map((size, index) => new TieredBlob(this, index, size));
  }

  /** The tier that serves reads: hot when there is a copy in memory. */
  get tier(): Tier {
    return this.hot === undefined ? "cold" : "hot";
  }

  /** Whether a move, a drop or its own life stage rules out moving or dropping it now. */
  get busy(): boolean {
    return !this.sealed || this.freed || this.dropping || this.moving !== undefined;
  }
}

/**
 * A blob of a {@link TieredObject}: reads, views and its fd come from the copy
 * that serves now, the hot one when there is one. A store never takes the hot
 * copy away while a lease holds the object, so views and fds handed out under
 * a lease stay valid until it ends; reads may move from the cold copy to a
 * new hot one meanwhile, and see the same bytes. Reads and writes of a new
 * object whose files are still being made wait for them, in order.
 */
export class TieredBlob implements Blob {
  /** Size in bytes. */
  readonly size: number;
  readonly #object: TieredObject;
  readonly #index: number;

  /**
   * @param object The object.
   * @param index Which of its blobs this is.
   * @param size Size in bytes.
   */
  constructor(object: TieredObject, index: number, size: number) {
    this.#object = object;
    this.#index = index;
    this.size = size;
  }

  /** The memfd of the hot copy, for transports that pass it to other processes. */
  get fd(): number | undefined {
    return this.#object.hot?.blobs[this.#index]?.fd;
  }

  /** A view of the serving copy: the hot one's memory, or undefined when only on disk. */
  openView(): Uint8Array | undefined {
    return this.#object.pending === undefined ? this.#serving().openView() : undefined;
  }

  /** Detaches a view, whichever copy opened it. */
  closeView(view: Uint8Array): void {
    this.#object.hot?.blobs[this.#index]?.closeView(view);
    this.#object.cold?.blobs[this.#index]?.closeView(view);
  }

  /** Copies bytes out of the serving copy. */
  read(offset: number, length: number): Promise<Uint8Array> {
    const { pending } = this.#object;
    if (pending !== undefined) return pending.then(() => this.read(offset, length));
    return this.#serving().read(offset, length);
  }

  /** Copies bytes into the object being created, in the tier it was placed in. */
  write(offset: number, bytes: Uint8Array): Promise<void> {
    const { pending } = this.#object;
    if (pending !== undefined) return pending.then(() => this.write(offset, bytes));
    return this.#serving().write(offset, bytes);
  }

  #serving(): Blob {
    const blob = (this.#object.hot ?? this.#object.cold)?.blobs[this.#index];
    if (blob === undefined) throw new ClosedError(`Cannot use object ${this.#object.id}: freed`);
    return blob;
  }
}
