import type { Blob } from "../../core/blob.ts";
import { checkRange } from "../../core/range.ts";
import { AlreadySealedError, ClosedError } from "../../core/errors.ts";
import type { Native } from "../../native/load.ts";
import type { MemfdPool } from "../../native/memfd_pool.ts";
import type { Tasks } from "../../native/tasks.ts";
import type { FdCloser } from "./closer.ts";

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
 *
 * One type each: `SmallMemfdBlob` (small_blob.ts), `PooledMemfdBlob`
 * (pooled_blob.ts), `AdoptedMemfdBlob` (adopted_blob.ts); the seals they add
 * are in memfd_seals.ts.
 */
export abstract class MemfdBlob implements Blob {
  /** Size in bytes. */
  readonly size: number;
  /** Where the blob is in its life; the subclasses move it on. */
  protected state: "creating" | "sealed" | "freed" = "creating";

  /**
   * Made by a subclass, one for each way a blob holds its bytes.
   *
   * @param size Size in bytes.
   */
  protected constructor(size: number) {
    this.size = size;
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
  abstract get fd(): number;

  /** Whether {@link MemfdBlob.seal} has run. */
  get sealed(): boolean {
    return this.state === "sealed";
  }

  /**
   * The memfd's seals as the kernel reports them (`F_SEAL_*` bits); reading
   * them hands out the fd, as {@link MemfdBlob.fd} does.
   *
   * @throws {ClosedError} When the blob is freed.
   */
  abstract get seals(): number;

  /**
   * Opens a view: zero-copy and writable while creating; once sealed, a
   * read-only mapping, or for a small blob on the heap a copy made for this
   * reader (see `HeapViews.openCopy`). In a recycled memfd, the first view
   * zeroes the old bytes that {@link MemfdBlob.write} has not overwritten,
   * which can take as long as writing the blob.
   *
   * @returns The view; close it with {@link MemfdBlob.closeView}.
   * @throws {ClosedError} When the blob is freed.
   */
  abstract openView(): Uint8Array;

  /**
   * Detaches a view from {@link MemfdBlob.openView}: it drops to length 0.
   * Views still open are detached at seal (writable ones) and at free.
   *
   * @param view The view.
   */
  abstract closeView(view: Uint8Array): void;

  /**
   * Copies `length` bytes from `offset` into a new array.
   *
   * @throws {InvalidArgumentError} When the range is outside the blob.
   * @throws {ClosedError} When the blob is freed.
   */
  read(offset: number, length: number): Promise<Uint8Array> {
    try {
      this.checkLive("read");
      checkRange("read", offset, length, this.size, "the blob");
      return Promise.resolve(this.copyOut(offset, length));
    } catch (error) {
      return Promise.reject(this.refused(error));
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
      this.checkLive("write");
      if (this.state === "sealed") throw new AlreadySealedError("Cannot write blob: sealed");
      checkRange("write", offset, bytes.length, this.size, "the blob");
      this.copyIn(offset, bytes);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(this.refused(error));
    }
  }

  /**
   * Makes the bytes immutable; called by the store. Detaches every view.
   *
   * A blob whose fd this process kept to itself needs no kernel seal yet,
   * nor any system call: later views of a large one come from a read-only
   * mapping of their own, and its read-write mapping stays, without views,
   * for copies and for reuse. A shared blob is sealed for every process
   * (see memfd_seals.ts).
   *
   * @throws {AlreadySealedError} When the blob is sealed already.
   * @throws {ClosedError} When the blob is freed.
   * @throws {WrongAccessError} When another process still maps the blob writable.
   */
  abstract seal(): void;

  /**
   * Resolves once sealing running in the background has ended: the bytes
   * of a sealed blob are then sealed for every process. Undefined when
   * none is running, so that callers need not wait a turn.
   */
  abstract settled(): Promise<void> | undefined;

  /**
   * Detaches every view, unmaps and closes the memfd; called by the store.
   * Idempotent. The work is done on other threads: closing gives the pages
   * back to the kernel, microseconds per page, and the memfd of a large blob
   * that no other process holds goes back to the pool instead.
   */
  abstract free(): Promise<void>;

  /**
   * Throws unless the blob is live.
   *
   * @param what What was asked of the blob, for the message.
   * @throws {ClosedError} When the blob is freed.
   */
  protected checkLive(what: string): void {
    if (this.state === "freed") throw new ClosedError(`Cannot ${what} blob: freed`);
  }

  /**
   * Copies `length` bytes from `offset`, inside the blob, into a new array.
   *
   * @param offset Where the bytes start.
   * @param length How many.
   * @returns The copy.
   */
  protected abstract copyOut(offset: number, length: number): Uint8Array;

  /**
   * Copies `bytes` into the blob at `offset`, inside it, while creating.
   *
   * @param offset Where they go.
   * @param bytes The bytes.
   */
  protected abstract copyIn(offset: number, bytes: Uint8Array): void;

  /**
   * The error a read or a write reports for one it threw.
   *
   * @param error What it threw.
   * @returns The error as it is, unless a kind of blob tells more.
   */
  protected refused(error: unknown): unknown {
    return error;
  }

  /**
   * Throws unless the blob may be sealed.
   *
   * @throws {ClosedError} When the blob is freed.
   * @throws {AlreadySealedError} When the blob is sealed already.
   */
  protected checkSealable(): void {
    this.checkLive("seal");
    if (this.state === "sealed") throw new AlreadySealedError("Cannot seal blob: already sealed");
  }
}
