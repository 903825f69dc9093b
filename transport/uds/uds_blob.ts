import type { Blob } from "../../core/blob.ts";
import { InvalidArgumentError, LeaseExpiredError, UnknownLeaseError } from "../../core/errors.ts";
import { Access } from "../../core/lease.ts";
import { checkWrite } from "../../core/lifecycle.ts";
import { checkRange } from "../../core/range.ts";
import { check } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import { Mapping } from "../../native/mapping.ts";
import type { SharedMapping } from "./mapping_cache.ts";
import type { PreparedMemfd } from "../../native/memfd_pool.ts";
import type { WriteAhead } from "./write_ahead.ts";
import { CHUNK } from "./protocol.ts";

/** No views. */
const NO_VIEWS: readonly Uint8Array[] = Object.freeze([]);

/** Mappings larger than this are unmapped off the JS thread at seal. */
const LARGE_MAPPING = 1024 * 1024;

/** What a {@link UdsBlob} needs from its lease and connection. */
export interface BlobOwner {
  /** The lease's id. */
  readonly leaseId: string;
  /** The object's id, for messages. */
  readonly objectId: string;
  /** The lease's access. */
  readonly access: Access;
  /** Whether the lease has ended on this side. */
  readonly ended: boolean;
  /** Why it ended, when its connection was lost under it. */
  readonly lostWith?: string | undefined;
  /** Whether the object has been sealed, or a seal through this lease is under way. */
  readonly sealed: boolean;
  /** Reads bytes of blob `index` from the server, for blobs without a memfd. */
  readRemote(index: number, offset: number, length: number): Promise<Uint8Array>;
  /** Writes bytes of blob `index` on the server, for blobs without a memfd. */
  writeRemote(index: number, offset: number, bytes: Uint8Array): Promise<void>;
}

/** A memfd this process faulted in ahead and handed to the daemon with a CREATE. */
export interface OwnMemfd {
  /** The memfd, cut to the blob's size, and its read-write mapping. */
  readonly memfd: PreparedMemfd;
  /** The blob's size. */
  readonly size: number;
  /** Where the mapping goes once written: unmapped on another thread. */
  readonly writeAhead: WriteAhead;
}

/** Where a {@link UdsBlob}'s bytes are. */
export type BlobSource =
  /** A READ lease's read-only mapping, maybe shared with other READ leases; its memfd is closed. */
  | SharedMapping
  /** A CREATE or WRITE lease's memfd, kept until the lease ends and mapped on demand. */
  | { readonly fd: number }
  /** A CREATE lease's memfd of this process's, mapped and faulted in already. */
  | OwnMemfd
  /** No memfd: the server keeps the bytes elsewhere, and they move over the socket. */
  | Record<never, never>;

/**
 * A blob of an object held through a Unix-socket lease, in one of three forms:
 *
 * - READ leases: a read-only shared mapping of the blob's memfd, reused by
 *   later READ leases of the same blob. Views are zero-copy, and detached
 *   when the lease ends; writing through one kills the process with SIGSEGV.
 * - CREATE and WRITE leases: the memfd itself. {@link UdsBlob.write} copies
 *   with `pwrite` (no page-table work for this process), and
 *   {@link UdsBlob.openView} maps it on demand, read-write until the object is
 *   sealed and read-only after. The memfd is closed when the lease ends.
 * - Blobs without a memfd (a daemon keeping objects in files): reads and
 *   writes go over the socket in chunks, and there are no views.
 *
 * Reads and writes copy synchronously, so no use of a mapping is in flight
 * when it is unmapped: views are detached first, then the memory goes.
 */
export class UdsBlob implements Blob {
  /** Size in bytes. */
  readonly size: number;
  readonly #native: Native;
  readonly #owner: BlobOwner;
  readonly #index: number;
  #fd: number | undefined;
  /** A CREATE or WRITE lease's own mapping of its memfd. */
  #mapping: Mapping | undefined;
  /**
   * A READ lease's mapping, and the views this lease opened of it: the
   * first in a field (a get opens one), any more in a list.
   */
  #shared: SharedMapping | undefined;
  #sharedView: Uint8Array | undefined;
  #sharedViews: Uint8Array[] | undefined;
  #writableMapping = false;
  /** A view kept for reads and writes through the mapping. */
  #own: Uint8Array | undefined;
  readonly #remote: boolean;
  /** For a memfd of this process's: unmapping goes to another thread, and the next one is prepared. */
  readonly #writeAhead: WriteAhead | undefined;

  /**
   * Wraps what the daemon passed for one blob of a lease.
   *
   * @param native The native library.
   * @param owner The lease and connection.
   * @param index The blob's position in its object.
   * @param size Its size in bytes.
   * @param source Its mapping, its memfd, or neither; the blob owns it from now on.
   */
  constructor(native: Native, owner: BlobOwner, index: number, size: number, source: BlobSource) {
    this.#native = native;
    this.#owner = owner;
    this.#index = index;
    this.size = size;
    this.#shared = "mapping" in source ? source : undefined;
    this.#fd = "fd" in source ? source.fd : undefined;
    if ("memfd" in source) {
      const { fd, pointer, capacity } = source.memfd;
      this.#fd = fd;
      this.#mapping = new Mapping(native, pointer, capacity, size);
      this.#writableMapping = true;
      this.#writeAhead = source.writeAhead;
    }
    this.#remote = this.#shared === undefined && this.#fd === undefined;
  }

  /**
   * A zero-copy view of the shared memory, or undefined for a blob without a
   * memfd. Read-only once the object is sealed; writable before, for a CREATE
   * or WRITE lease.
   */
  openView(): Uint8Array | undefined {
    this.#checkLive();
    if (this.#shared === undefined) return this.#mapped()?.openView();
    const view = this.#shared.mapping.openView();
    if (this.#sharedView === undefined) this.#sharedView = view;
    else (this.#sharedViews ??= []).push(view);
    return view;
  }

  /** Detaches a view from {@link UdsBlob.openView}: it drops to length 0. */
  closeView(view: Uint8Array): void {
    if (this.#shared === undefined) this.#mapping?.closeView(view);
    else if (view === this.#sharedView) {
      this.#sharedView = undefined;
      this.#shared.mapping.closeView(view);
    } else {
      const at = this.#sharedViews?.indexOf(view) ?? -1;
      if (at < 0) return;
      this.#sharedViews!.splice(at, 1);
      this.#shared.mapping.closeView(view);
    }
  }

  /** Copies `length` bytes from `offset`: from the mapping, the memfd, or the server. */
  read(offset: number, length: number): Promise<Uint8Array> {
    try {
      this.#checkLive();
      checkRange("read", offset, length, this.size, this.#owner.objectId);
      if (this.#remote) return this.#readRemote(offset, length);
      if (this.#mapping !== undefined || this.#shared !== undefined) {
        return Promise.resolve(this.#view().slice(offset, offset + length));
      }
      const bytes = new Uint8Array(length);
      const { symbols } = this.#native;
      check(symbols.pk_pread_all(this.#fd!, bytes, BigInt(length), BigInt(offset)), "pread");
      return Promise.resolve(bytes);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Copies `bytes` in at `offset`: into the mapping, the memfd, or over the socket. */
  write(offset: number, bytes: Uint8Array): Promise<void> {
    try {
      this.#checkLive();
      checkWrite(this.#owner, this.#owner.sealed);
      if (!(bytes instanceof Uint8Array)) {
        throw new InvalidArgumentError(
          `Cannot write object ${this.#owner.objectId}: bytes must be a Uint8Array`,
        );
      }
      checkRange("write", offset, bytes.length, this.size, this.#owner.objectId);
      if (this.#remote) return this.#writeRemote(offset, bytes);
      if (this.#mapping !== undefined) {
        this.#view().set(bytes, offset);
      } else if (bytes.length > 0) {
        const { symbols } = this.#native;
        check(
          symbols.pk_pwrite_all(this.#fd!, bytes, BigInt(bytes.length), BigInt(offset)),
          "pwrite",
        );
      }
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Detaches every view and unmaps a writable mapping, which must be gone
   * before the daemon can seal the memfd. Large mappings are unmapped off
   * the JS thread.
   */
  async unmapWritable(): Promise<void> {
    if (!this.#writableMapping) return;
    const range = this.#detach();
    if (range === undefined) return;
    if (this.#writeAhead !== undefined) {
      // The daemon seals a memfd of a client's once it is unmapped: no need to wait.
      this.#writeAhead.unmap(range.pointer, range.length);
      return;
    }
    const { symbols } = this.#native;
    const length = BigInt(range.length);
    check(
      range.length > LARGE_MAPPING
        ? await symbols.pk_munmap_once_nb(range.pointer, length)
        : symbols.pk_munmap_once(range.pointer, length),
      "munmap",
    );
  }

  /** Detaches every view, unmaps and closes the memfd: the lease has ended. Idempotent. */
  end(): void {
    if (this.#shared !== undefined) {
      const mapping = this.#shared.mapping;
      if (this.#sharedView !== undefined) mapping.closeView(this.#sharedView);
      const views = this.#sharedViews ?? NO_VIEWS;
      for (let i = 0; i < views.length; i++) mapping.closeView(views[i]!);
      this.#sharedView = undefined;
      this.#sharedViews = undefined;
      this.#own = undefined;
      this.#shared.release();
      this.#shared = undefined;
    }
    const range = this.#detach();
    if (range && this.#writeAhead !== undefined) {
      this.#writeAhead.unmap(range.pointer, range.length);
    } else if (range) {
      check(this.#native.symbols.pk_munmap_once(range.pointer, BigInt(range.length)), "munmap");
    }
    if (this.#fd !== undefined) this.#native.symbols.pk_close(this.#fd);
    if (this.#fd !== undefined && this.#writeAhead !== undefined) this.#writeAhead.done(this.size);
    this.#fd = undefined;
  }

  #detach(): ReturnType<Mapping["detach"]> {
    const mapping = this.#mapping;
    this.#mapping = undefined;
    this.#own = undefined;
    this.#writableMapping = false;
    return mapping?.detach();
  }

  /** The mapping, made from the memfd if there is none yet; undefined without either. */
  #mapped(): Mapping | undefined {
    if (this.#mapping === undefined && this.#fd !== undefined) {
      const writable = this.#owner.access !== Access.READ && !this.#owner.sealed;
      this.#mapping = Mapping.map(this.#native, this.#fd, this.size, { writable });
      this.#writableMapping = writable;
    }
    return this.#mapping;
  }

  #view(): Uint8Array {
    this.#own ??= this.#shared === undefined ? this.#mapping!.openView() : this.openView()!;
    return this.#own;
  }

  async #readRemote(offset: number, length: number): Promise<Uint8Array> {
    const bytes = new Uint8Array(length);
    const parts: Promise<void>[] = [];
    for (let at = 0; at < length; at += CHUNK) {
      const size = Math.min(CHUNK, length - at);
      parts.push(
        this.#owner.readRemote(this.#index, offset + at, size).then((chunk) =>
          bytes.set(chunk, at)
        ),
      );
    }
    await Promise.all(parts);
    return bytes;
  }

  async #writeRemote(offset: number, bytes: Uint8Array): Promise<void> {
    const parts: Promise<void>[] = [];
    let at = 0;
    do {
      const chunk = bytes.subarray(at, Math.min(at + CHUNK, bytes.length));
      parts.push(this.#owner.writeRemote(this.#index, offset + at, chunk));
      at += CHUNK;
    } while (at < bytes.length);
    await Promise.all(parts);
  }

  #checkLive(): void {
    const lost = this.#owner.lostWith;
    if (lost !== undefined) {
      throw new LeaseExpiredError(
        `Lease ${this.#owner.leaseId} on ${this.#owner.objectId} ended: ${lost}`,
      );
    }
    if (this.#owner.ended) {
      throw new UnknownLeaseError(
        `Lease ${this.#owner.leaseId} on ${this.#owner.objectId} has ended`,
      );
    }
  }
}
