import type { Blob } from "../../core/blob.ts";
import {
  AlreadySealedError,
  ClosedError,
  InvalidArgumentError,
  PackiceError,
  WrongAccessError,
} from "../../core/errors.ts";
import { check, Errno, SystemError } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import type { Native } from "../../native/load.ts";
import { Mapping } from "../../native/mapping.ts";
import { AdoptedSeal } from "./adopted_seal.ts";
import { checkRange } from "../../core/range.ts";
import { HeapViews } from "./heap_views.ts";
import type { FdCloser } from "./closer.ts";
import { LARGE_BLOB } from "../../native/memfd_pool.ts";
import type { MemfdPool } from "../../native/memfd_pool.ts";
import { FULL_SEALS, SIZE_SEALS } from "./seals.ts";
import type { Tasks } from "../../native/tasks.ts";

/** What the blobs of one store share. */
export interface MemfdContext {
  /** The native library. */
  readonly native: Native;
  /** Where background work is tracked. */
  readonly tasks: Tasks;
  /** Closes the memfds of small blobs on another thread. */
  readonly closer: FdCloser;
  /** Takes back a private large blob's memfd for reuse; see {@link MemfdPool.recycle}. */
  readonly pool: MemfdPool;
}

type State = "creating" | "sealed" | "freed";

/**
 * A blob that another process can map once it receives {@link MemfdBlob.fd}
 * over a Unix socket.
 *
 * A large blob (over 256 KiB) lives in a memfd from the start, with a
 * read-write mapping the pool has faulted in, and its bytes are copied in
 * and out of that mapping by C without a JS view (a view of a large mapping
 * is external memory that drives V8's garbage collector). A small blob lives
 * in an `ArrayBuffer` until its fd is first asked for, and only then gets a
 * memfd: most small objects never leave the process, and a memfd each would
 * cost system calls and a file descriptor per object (a process may hold
 * only so many, 20000 here). Asking for the fd of a small blob while
 * creating moves its bytes into the memfd and detaches the views opened
 * before; after seal the memfd is a sealed copy and views stay valid.
 *
 * While creating, views are writable; {@link MemfdBlob.seal} detaches them.
 * Views of a sealed large blob come from a read-only mapping: writing into
 * one kills the process with SIGSEGV, like any write to read-only memory
 * (the native library prints why first); views of a sealed small blob are
 * copies, so a write into one changes nothing but that copy.
 *
 * Kernel seals matter only to processes that hold the fd, so they are added
 * when the fd is first handed out: `F_SEAL_GROW | F_SEAL_SHRINK` while
 * creating, so that no process can truncate the memfd under another's
 * mapping, and `F_SEAL_WRITE | F_SEAL_SEAL` too at seal, or when the fd is
 * handed out after seal. A large blob whose fd stayed in this process seals
 * without a system call, and its memfd and mapping go back to the pool when
 * freed, to be reused instead of allocated afresh: the next blob zeroes what
 * it does not overwrite of the old bytes before they can be read (by
 * {@link MemfdBlob.read}, a view, the fd, or after seal).
 *
 * A blob can also take over a memfd that a writer in another process has
 * filled already (see `MemfdBlobStore.allocateFrom`): sealing it cannot
 * wait for that writer to unmap, so it gets `F_SEAL_FUTURE_WRITE` at once
 * and every seal once the writer's mapping is gone, and readers wait for
 * that in {@link MemfdBlob.settled}.
 */
export class MemfdBlob implements Blob {
  /** Size in bytes. */
  readonly size: number;
  readonly #native: Native;
  readonly #context: MemfdContext;
  /** The memfd; -1 for a small blob until its fd is asked for. */
  #fd: number;
  /** The bytes of a small blob before it has a memfd, and its copy in this process after seal. */
  #heap: ArrayBuffer | undefined;
  /** Open views of `#heap`. */
  readonly #heapViews = new HeapViews();
  #state: State = "creating";
  /** Whether the fd has been handed out, so that other processes may hold it. */
  #shared = false;
  /**
   * The mapping bytes are copied through: the pool's read-write one for a
   * large blob, kept while the blob is private; else made on demand,
   * read-write while creating and read-only once sealed.
   */
  #mapping: Mapping | undefined;
  /** The read-only mapping that views of a sealed private large blob come from. */
  #viewMapping: Mapping | undefined;
  /** Unmapping and sealing still running on another thread. */
  #sealing: Promise<void> | undefined;
  /** Whether a writer in another process filled the memfd before this blob took it over. */
  readonly #adopted: boolean;
  /** The seal of such a memfd, while the writer may still map it. */
  #adoptedSeal: AdoptedSeal | undefined;
  /** Bytes at the start of a recycled memfd that may hold a freed object's data. */
  #stale = 0;
  /** The first `#writtenTo` bytes hold no stale data: written, or zeroed. */
  #writtenTo = 0;

  /**
   * Creates a small blob on the heap, or takes ownership of a large blob's
   * memfd, which no other process holds.
   *
   * @param context What the blobs of the store share.
   * @param size Size in bytes.
   * @param memfd For a large blob: its memfd, sized, a read-write mapping of
   * it, and how many bytes at the start hold a freed object's data, which the
   * blob zeroes unless they are overwritten before anyone can read them. Or
   * a memfd another process has filled (`adopted`), with the size seals
   * added and no mapping. Or, for a small blob, the `heap` memory that
   * holds its bytes already, of its size, which the blob takes over.
   */
  constructor(
    context: MemfdContext,
    size: number,
    memfd?:
      | { fd: number; mapping: Mapping; stale: number }
      | { fd: number; adopted: true }
      | { heap: ArrayBuffer },
  ) {
    this.#native = context.native;
    this.#context = context;
    this.size = size;
    if (memfd !== undefined && "heap" in memfd) {
      this.#fd = -1;
      this.#adopted = false;
      this.#heap = memfd.heap;
      return;
    }
    this.#fd = memfd?.fd ?? -1;
    this.#adopted = memfd !== undefined && "adopted" in memfd;
    this.#shared = this.#adopted;
    if (memfd !== undefined && "mapping" in memfd) {
      this.#mapping = memfd.mapping;
      this.#stale = Math.min(memfd.stale, size);
    }
    this.#heap = memfd ? undefined : new ArrayBuffer(size);
  }

  /**
   * The memfd, for passing to another process with SCM_RIGHTS; it stays
   * open until the blob is freed, and the receiver gets its own descriptor.
   * The first use makes the memfd of a small blob and adds the kernel seals
   * the blob's state calls for.
   *
   * @throws {ClosedError} When the blob is freed.
   * @throws {CapacityExceededError} When the kernel has no memory or descriptor for a small blob's memfd.
   */
  get fd(): number {
    this.#checkLive("use the fd of");
    if (!this.#shared) this.#share();
    return this.#fd;
  }

  /** Whether {@link MemfdBlob.seal} has run. */
  get sealed(): boolean {
    return this.#state === "sealed";
  }

  /**
   * The memfd's seals as the kernel reports them (`F_SEAL_*` bits); reading
   * them hands out the fd, as {@link MemfdBlob.fd} does.
   *
   * @throws {ClosedError} When the blob is freed.
   */
  get seals(): number {
    return check(this.#native.symbols.pk_get_seals(this.fd), "fcntl(F_GET_SEALS)");
  }

  /**
   * Opens a view: zero-copy and writable while creating; once sealed, a
   * read-only mapping, or for a small blob on the heap a copy made for this
   * reader (see `HeapViews.openCopy`). In
   * a recycled memfd, the first view zeroes the old bytes that
   * {@link MemfdBlob.write} has not overwritten, which can take as long as
   * writing the blob.
   *
   * @returns The view; close it with {@link MemfdBlob.closeView}.
   * @throws {ClosedError} When the blob is freed.
   */
  openView(): Uint8Array {
    this.#checkLive("open a view of");
    if (this.#heap) {
      // No page of a heap buffer can be made read-only: a reader of sealed bytes gets a copy.
      return this.#state === "sealed"
        ? this.#heapViews.openCopy(this.#heap)
        : this.#heapViews.open(this.#heap);
    }
    this.#zeroStale();
    if (this.#privateSealed()) {
      this.#viewMapping ??= Mapping.map(this.#native, this.#fd, this.size);
      return this.#viewMapping.openView();
    }
    return this.#mapped().openView();
  }

  /**
   * Detaches a view from {@link MemfdBlob.openView}: it drops to length 0.
   * Views still open are detached at seal (writable ones) and at free.
   *
   * @param view The view.
   */
  closeView(view: Uint8Array): void {
    if (this.#heapViews.close(view)) return;
    this.#viewMapping?.closeView(view);
    this.#mapping?.closeView(view);
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
      if (this.#heap) {
        return Promise.resolve(new Uint8Array(this.#heap.slice(offset, offset + length)));
      }
      const bytes = new Uint8Array(length);
      const { symbols } = this.#native;
      if (this.size > LARGE_BLOB) {
        this.#zeroStale();
        symbols.pk_copy_out(bytes, this.#at(offset), BigInt(length));
      } else {
        check(symbols.pk_pread_all(this.#fd, bytes, BigInt(length), BigInt(offset)), "pread");
      }
      return Promise.resolve(bytes);
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
      if (this.#state === "sealed") throw new AlreadySealedError("Cannot write blob: sealed");
      checkRange("write", offset, bytes.length, this.size, "the blob");
      const { symbols } = this.#native;
      if (this.#heap) {
        new Uint8Array(this.#heap).set(bytes, offset);
      } else if (this.size > LARGE_BLOB) {
        if (this.#stale > this.#writtenTo) {
          // Keep [0, writtenTo) free of stale data: zero any gap this write leaves.
          const gap = Math.min(offset, this.#stale) - this.#writtenTo;
          if (gap > 0) symbols.pk_zero(this.#at(this.#writtenTo), BigInt(gap));
          this.#writtenTo = Math.max(this.#writtenTo, offset + bytes.length);
        }
        symbols.pk_copy_in(this.#at(offset), bytes, BigInt(bytes.length));
      } else if (bytes.length > 0) {
        check(
          symbols.pk_pwrite_all(this.#fd, bytes, BigInt(bytes.length), BigInt(offset)),
          "pwrite",
        );
      }
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(this.#adopted ? sealedByWriter(error) : error);
    }
  }

  /**
   * Makes the bytes immutable; called by the store. Detaches every view.
   *
   * A blob whose fd this process kept to itself needs no kernel seal yet,
   * nor any system call: later views of a large one come from a read-only
   * mapping of their own, and its read-write mapping stays, without views,
   * for copies and for reuse.
   *
   * A shared blob is sealed for every process. `F_SEAL_WRITE` can only be
   * added once no writable shared mapping of it is left anywhere, and
   * unmapping a large written mapping costs more than writing it, so a large blob is first sealed with `F_SEAL_FUTURE_WRITE` (no
   * new writable mapping and no `write()` from now on, in any process) and
   * its mapping is unmapped on another thread before `F_SEAL_WRITE |
   * F_SEAL_SEAL` are added; {@link MemfdBlob.settled} waits for that. When
   * another process still maps the blob writable, `F_SEAL_WRITE` fails with
   * EBUSY and the blob keeps the future-write seal.
   *
   * @throws {AlreadySealedError} When the blob is sealed already.
   * @throws {ClosedError} When the blob is freed.
   */
  seal(): void {
    this.#checkLive("seal");
    if (this.#state === "sealed") throw new AlreadySealedError("Cannot seal blob: already sealed");
    if (!this.#heap) this.#zeroStale();
    if (this.#adopted && this.#state === "creating") {
      this.#sealAdopted();
      this.#state = "sealed";
      return;
    }
    if (this.#shared && this.#state === "creating") {
      this.#sealForEveryone();
      this.#state = "sealed";
      return;
    }
    this.#state = "sealed";
    this.#heapViews.closeAll();
    if (this.#heap) return;
    if (!this.#shared && this.#mapping) {
      this.#mapping.closeViews();
      return;
    }
    const range = this.#mapping?.detach();
    this.#mapping = undefined;
    if (range && range.length > LARGE_BLOB) {
      this.#addSeals(Linux.F_SEAL_FUTURE_WRITE);
      this.#unmapAndSeal(range);
      return;
    }
    if (range) check(this.#native.symbols.pk_munmap(range.pointer, BigInt(range.length)), "munmap");
    this.#addFullSeals();
  }

  /**
   * Resolves once sealing running in the background has ended: the bytes
   * of a sealed blob are then sealed for every process. Undefined when
   * none is running, so that callers need not wait a turn.
   */
  settled(): Promise<void> | undefined {
    this.#adoptedSeal?.poke();
    return this.#sealing?.catch(() => {});
  }

  /**
   * Detaches every view, unmaps and closes the memfd; called by the store.
   * Idempotent. The work is done on other threads: closing gives the pages
   * back to the kernel, microseconds per page, and the memfd of a large blob
   * that no other process holds goes back to the pool instead.
   */
  async free(): Promise<void> {
    if (this.#state === "freed") return;
    this.#state = "freed";
    this.#adoptedSeal?.stop();
    this.#heapViews.closeAll();
    this.#heap?.transfer(0);
    this.#heap = undefined;
    const { symbols } = this.#native;
    const views = this.#viewMapping?.detach();
    this.#viewMapping = undefined;
    if (views) {
      this.#context.tasks.track(
        "Unmapping views",
        symbols.pk_munmap_nb(views.pointer, BigInt(views.length))
          .then((result) => check(result, "munmap")),
      );
    }
    const range = this.#mapping?.detach();
    this.#mapping = undefined;
    if (this.#fd < 0) return;
    if (
      range && !this.#shared && this.size > LARGE_BLOB &&
      this.#context.pool.recycle(this.#fd, range.pointer, range.length, this.size)
    ) {
      return;
    }
    // Work on another thread may still use the fd and the mapping: close them only after it.
    await this.settled();
    if (this.size <= LARGE_BLOB) {
      if (range) check(symbols.pk_munmap(range.pointer, BigInt(range.length)), "munmap");
      this.#context.closer.close(this.#fd);
      return;
    }
    const result = await symbols.pk_unmap_close_nb(
      this.#fd,
      range?.pointer ?? null,
      BigInt(range?.length ?? 0),
    );
    check(result, "munmap and close");
  }

  #checkLive(what: string): void {
    if (this.#state === "freed") throw new ClosedError(`Cannot ${what} blob: freed`);
  }

  /** Whether this is a sealed large blob whose fd stayed in this process. */
  #privateSealed(): boolean {
    return this.#state === "sealed" && !this.#shared && this.size > LARGE_BLOB;
  }

  /** Zeroes what is left of a freed object's data, before the bytes can be read. */
  #zeroStale(): void {
    if (this.#stale > this.#writtenTo) {
      this.#native.symbols.pk_zero(
        this.#at(this.#writtenTo),
        BigInt(this.#stale - this.#writtenTo),
      );
    }
    this.#stale = 0;
  }

  /** Hands the fd out for the first time: makes a small blob's memfd, and seals. */
  #share(): void {
    const heap = this.#heap;
    if (heap) {
      const fd = new Int32Array(1);
      check(this.#native.symbols.pk_memfd_prepare(BigInt(this.size), 1, fd, null), "memfd prepare");
      const written = this.#native.symbols.pk_pwrite_all(
        fd[0]!,
        new Uint8Array(heap),
        BigInt(this.size),
        0n,
      );
      if (written < 0) this.#context.closer.close(fd[0]!);
      check(written, "pwrite");
      this.#fd = fd[0]!;
      // While creating, the memfd takes over: writes from other processes land there.
      if (this.#state === "creating") {
        this.#heapViews.closeAll();
        heap.transfer(0);
        this.#heap = undefined;
      }
    } else {
      this.#zeroStale();
    }
    const privateSealed = this.#privateSealed();
    this.#shared = true;
    if (this.#state === "creating") {
      this.#addSeals(SIZE_SEALS);
      this.#unmapInBackground();
    } else if (privateSealed) this.#sealShared();
    else this.#addFullSeals();
  }

  /**
   * Drops this process's read-write mapping of a blob whose fd a writer in
   * another process now holds, on another thread while that writer works, so
   * that at seal no mapping of ours keeps `F_SEAL_WRITE` out.
   */
  #unmapInBackground(): void {
    const range = this.#mapping?.detach();
    this.#mapping = undefined;
    if (range === undefined) return;
    const unmapping: Promise<void> = this.#native.symbols
      .pk_munmap_once_nb(range.pointer, BigInt(range.length))
      .then((result) => void check(result, "munmap"))
      .finally(() => {
        if (this.#sealing === unmapping) this.#sealing = undefined;
      });
    this.#sealing = unmapping;
    this.#context.tasks.track("Unmapping a shared memfd", unmapping);
  }

  /**
   * Seals a blob whose fd was handed out while creating, for every process:
   * all seals or none. `F_SEAL_WRITE` fails with EBUSY while any process still
   * maps the memfd writable; then the seal is refused, so that no writer can
   * change the bytes of an object that readers take as sealed.
   *
   * @throws {WrongAccessError} When a writable mapping is still open elsewhere.
   */
  #sealForEveryone(): void {
    const range = this.#mapping?.detach();
    this.#mapping = undefined;
    if (range) check(this.#native.symbols.pk_munmap(range.pointer, BigInt(range.length)), "munmap");
    const result = this.#native.symbols.pk_add_seals(this.#fd, FULL_SEALS);
    if (result === -Errno.EBUSY) {
      throw new WrongAccessError(
        "Cannot seal blob: a writable mapping of it is still open in another process",
      );
    }
    check(result, "fcntl(F_ADD_SEALS)");
    this.#heapViews.closeAll();
  }

  /**
   * Seals a blob whose memfd another process filled and may still map
   * read-write: `F_SEAL_FUTURE_WRITE` now (nobody maps it writable or
   * writes to it any more), every seal once that mapping is gone, or a
   * sealed copy of the bytes if it stays or its writer has forbidden more
   * seals; see {@link AdoptedSeal}.
   */
  #sealAdopted(): void {
    const { symbols } = this.#native;
    const result = symbols.pk_add_seals(this.#fd, FULL_SEALS);
    if (result === 0) return;
    // Else EBUSY, the writer's mapping is still there, or EPERM, the writer has forbidden
    // more seals (then this one fails too, and only a copy can be sealed).
    symbols.pk_add_seals(this.#fd, Linux.F_SEAL_FUTURE_WRITE);
    const seal = this.#adoptedSeal = new AdoptedSeal(this.#native, this.#fd, this.size);
    const filled = this.#fd;
    const sealing: Promise<void> = seal.done
      .then((sealed) => {
        if (sealed === filled) return;
        if (this.#state === "freed") {
          this.#native.symbols.pk_close(sealed);
          return;
        }
        // A mapping made meanwhile (a digest, say) shows the memfd the writer keeps.
        this.#mapping?.close();
        this.#mapping = undefined;
        this.#fd = sealed;
        this.#context.closer.close(filled);
      })
      .finally(() => {
        this.#adoptedSeal = undefined;
        if (this.#sealing === sealing) this.#sealing = undefined;
      });
    this.#sealing = sealing;
    this.#context.tasks.track("Sealing a memfd another process filled", sealing);
  }

  /**
   * Seals a sealed large blob whose fd is handed out for the first time. Its
   * mappings, made before the seals, keep `F_SEAL_WRITE` out, even the
   * read-only one. While views of it are open, `F_SEAL_FUTURE_WRITE |
   * F_SEAL_SEAL` (with the size seals) stop every other process from writing,
   * and only this process keeps its mappings. Otherwise the mappings go, the
   * read-write one on another thread as at seal, before every seal is added.
   */
  #sealShared(): void {
    if (this.#viewMapping && this.#viewMapping.openViews > 0) {
      this.#addSeals(SIZE_SEALS | Linux.F_SEAL_FUTURE_WRITE | Linux.F_SEAL_SEAL);
      return;
    }
    this.#viewMapping?.close();
    this.#viewMapping = undefined;
    const range = this.#mapping?.detach();
    this.#mapping = undefined;
    this.#addSeals(SIZE_SEALS | Linux.F_SEAL_FUTURE_WRITE);
    if (range) this.#unmapAndSeal(range);
    else this.#addFullSeals();
  }

  /** Unmaps a large writable mapping on another thread, then adds every seal. */
  #unmapAndSeal(range: { pointer: NonNullable<Deno.PointerValue>; length: number }): void {
    const sealing: Promise<void> = this.#native.symbols.pk_unmap_seal_nb(
      this.#fd,
      range.pointer,
      BigInt(range.length),
      FULL_SEALS,
    ).then((result) => {
      if (result !== -Errno.EBUSY) check(result, "munmap and fcntl(F_ADD_SEALS)");
    }).finally(() => {
      if (this.#sealing === sealing) this.#sealing = undefined;
    });
    this.#sealing = sealing;
    this.#context.tasks.track("Sealing a memfd", sealing);
  }

  #addSeals(seals: number): void {
    check(this.#native.symbols.pk_add_seals(this.#fd, seals), "fcntl(F_ADD_SEALS)");
  }

  /**
   * Adds every seal. EBUSY means a writable mapping of the blob is still
   * open in another process: the blob then keeps `F_SEAL_FUTURE_WRITE`.
   */
  #addFullSeals(): void {
    const result = this.#native.symbols.pk_add_seals(this.#fd, FULL_SEALS);
    if (result === -Errno.EBUSY) this.#addSeals(SIZE_SEALS | Linux.F_SEAL_FUTURE_WRITE);
    else check(result, "fcntl(F_ADD_SEALS)");
  }

  /** The mapping of the memfd, made now if needed: read-write while creating, else read-only. */
  #mapped(): Mapping {
    try {
      this.#mapping ??= Mapping.map(this.#native, this.#fd, this.size, {
        writable: this.#state === "creating",
      });
    } catch (error) {
      throw this.#adopted ? sealedByWriter(error) : error;
    }
    return this.#mapping;
  }

  /** The address of byte `offset` of a large blob, in its mapping. */
  #at(offset: number): Deno.PointerValue {
    return Deno.UnsafePointer.offset(this.#mapped().pointer!, offset);
  }
}

/**
 * The error for a write, or a writable mapping, refused with EPERM by a
 * memfd another process filled: it has sealed the memfd against writes since
 * handing it over.
 */
function sealedByWriter(error: unknown): unknown {
  if (!(error instanceof PackiceError) || !(error.cause instanceof SystemError)) return error;
  if (error.cause.errno !== Errno.EPERM) return error;
  return new InvalidArgumentError(
    "Cannot write or map blob: the process that handed its memfd over has sealed it against writes",
    { cause: error },
  );
}
