import type { Blob } from "../../core/blob.ts";
import { AlreadySealedError, ClosedError } from "../../core/errors.ts";
import { check, Errno } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import type { Native } from "../../native/load.ts";
import { Mapping } from "../../native/mapping.ts";
import { checkRange } from "./checks.ts";
import { LARGE_BLOB } from "./memfd_pool.ts";
import type { FdCloser } from "./closer.ts";
import type { Tasks } from "./tasks.ts";

/** What the blobs of one store share. */
export interface MemfdContext {
  /** The native library. */
  readonly native: Native;
  /** Where background work is tracked. */
  readonly tasks: Tasks;
  /** Closes the memfds of small blobs on another thread. */
  readonly closer: FdCloser;
}

/** The seals a blob gets at allocation: its size never changes. */
export const SIZE_SEALS = Linux.F_SEAL_GROW | Linux.F_SEAL_SHRINK;
/** The seals of a sealed blob. */
export const FULL_SEALS = Linux.F_SEAL_WRITE | SIZE_SEALS | Linux.F_SEAL_SEAL;

type State = "creating" | "sealed" | "freed";

/**
 * A blob held in one memfd, which another process can map once it receives
 * {@link MemfdBlob.fd} over a Unix socket.
 *
 * Its size is sealed (`F_SEAL_GROW | F_SEAL_SHRINK`) before it is first
 * mapped or its fd handed out, so no process can truncate it under another's
 * mapping. While creating, views are writable; {@link MemfdBlob.seal}
 * detaches them and seals the memfd against writes, after which views are
 * read-only mappings: writing into one kills the process with SIGSEGV, like
 * any write to read-only memory.
 *
 * Small blobs are read and written with `pread`/`pwrite` and mapped only for
 * views; large ones (over 256 KiB) start with a mapping the pool has already
 * faulted in, and their bytes are copied through it.
 */
export class MemfdBlob implements Blob {
  /** Size in bytes. */
  readonly size: number;
  readonly #native: Native;
  readonly #context: MemfdContext;
  readonly #fd: number;
  #state: State = "creating";
  /** Read-write while creating, read-only once sealed; made on demand. */
  #mapping: Mapping | undefined;
  /** This blob's own view of `#mapping`, for copies in and out. */
  #view: Uint8Array | undefined;
  /** Unmapping and sealing still running on another thread. */
  #sealing: Promise<void> | undefined;
  /** Whether F_SEAL_GROW | F_SEAL_SHRINK are on. */
  #sizeSealed = false;

  /**
   * Takes ownership of a memfd of the blob's size.
   *
   * @param context What the blobs of the store share.
   * @param fd The memfd.
   * @param size Its size in bytes.
   * @param mapping A read-write mapping of it, if there is one already.
   */
  constructor(context: MemfdContext, fd: number, size: number, mapping: Mapping | undefined) {
    this.#native = context.native;
    this.#context = context;
    this.#fd = fd;
    this.size = size;
    this.#mapping = mapping;
    if (mapping) this.#sealSize();
  }

  /**
   * The memfd, for passing to another process with SCM_RIGHTS. It stays open
   * until the blob is freed; the receiver gets its own descriptor.
   *
   * @throws {ClosedError} When the blob is freed.
   */
  get fd(): number {
    this.#checkLive("use the fd of");
    this.#sealSize();
    return this.#fd;
  }

  /** Whether {@link MemfdBlob.seal} has run. */
  get sealed(): boolean {
    return this.#state === "sealed";
  }

  /**
   * The memfd's seals as the kernel reports them (`F_SEAL_*` bits).
   *
   * @throws {ClosedError} When the blob is freed.
   */
  get seals(): number {
    return check(this.#native.symbols.pk_get_seals(this.fd), "fcntl(F_GET_SEALS)");
  }

  /**
   * Opens a zero-copy view: writable while creating, read-only once sealed.
   *
   * @returns The view; close it with {@link MemfdBlob.closeView}.
   * @throws {ClosedError} When the blob is freed.
   */
  openView(): Uint8Array {
    this.#checkLive("open a view of");
    return this.#mapped().openView();
  }

  /**
   * Detaches a view from {@link MemfdBlob.openView}: it drops to length 0.
   * Views still open are detached at seal (writable ones) and at free.
   *
   * @param view The view.
   */
  closeView(view: Uint8Array): void {
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
      checkRange("read", offset, length, this.size);
      if (this.size > LARGE_BLOB) {
        return Promise.resolve(this.#ownView().slice(offset, offset + length));
      }
      const bytes = new Uint8Array(length);
      check(
        this.#native.symbols.pk_pread_all(this.#fd, bytes, BigInt(length), BigInt(offset)),
        "pread",
      );
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
      checkRange("write", offset, bytes.length, this.size);
      if (this.size > LARGE_BLOB) {
        this.#ownView().set(bytes, offset);
      } else if (bytes.length > 0) {
        check(
          this.#native.symbols.pk_pwrite_all(
            this.#fd,
            bytes,
            BigInt(bytes.length),
            BigInt(offset),
          ),
          "pwrite",
        );
      }
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Makes the bytes immutable; called by the store.
   *
   * Detaches every view, then seals the memfd. `F_SEAL_WRITE` can only be
   * added once no writable shared mapping is left in any process, and
   * unmapping a large written mapping costs more than writing it (5 ms for
   * 64 MiB), so a large blob is first sealed with `F_SEAL_FUTURE_WRITE` (no
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
    const { symbols } = this.#native;
    const range = this.#mapping?.detach();
    this.#mapping = undefined;
    this.#view = undefined;
    this.#state = "sealed";
    if (range && range.length > LARGE_BLOB) {
      check(symbols.pk_add_seals(this.#fd, Linux.F_SEAL_FUTURE_WRITE), "fcntl(F_ADD_SEALS)");
      this.#sealing = symbols.pk_unmap_seal_nb(
        this.#fd,
        range.pointer,
        BigInt(range.length),
        FULL_SEALS,
      ).then((result) => {
        if (result !== -Errno.EBUSY) check(result, "munmap and fcntl(F_ADD_SEALS)");
      });
      this.#context.tasks.track("Sealing a memfd", this.#sealing);
      return;
    }
    if (range) check(symbols.pk_munmap(range.pointer, BigInt(range.length)), "munmap");
    const result = symbols.pk_add_seals(this.#fd, FULL_SEALS);
    if (result === -Errno.EBUSY) {
      const seals = SIZE_SEALS | Linux.F_SEAL_FUTURE_WRITE;
      check(symbols.pk_add_seals(this.#fd, seals), "fcntl(F_ADD_SEALS)");
    } else {
      check(result, "fcntl(F_ADD_SEALS)");
    }
    this.#sizeSealed = true;
  }

  /** Resolves once sealing running on another thread has ended. */
  async settled(): Promise<void> {
    await this.#sealing?.catch(() => {});
  }

  /**
   * Detaches every view, unmaps and closes the memfd; called by the store.
   * Idempotent. The memfd is closed on another thread, as giving its pages
   * back takes microseconds per page; large blobs are also unmapped there.
   */
  async free(): Promise<void> {
    if (this.#state === "freed") return;
    this.#state = "freed";
    const range = this.#mapping?.detach();
    this.#mapping = undefined;
    this.#view = undefined;
    // The seal on another thread still uses the fd: close it only after.
    await this.settled();
    const { symbols } = this.#native;
    if (this.size > LARGE_BLOB) {
      const result = await symbols.pk_unmap_close_nb(
        this.#fd,
        range?.pointer ?? null,
        BigInt(range?.length ?? 0),
      );
      check(result, "munmap and close");
      return;
    }
    if (range) check(symbols.pk_munmap(range.pointer, BigInt(range.length)), "munmap");
    this.#context.closer.close(this.#fd);
  }

  #checkLive(what: string): void {
    if (this.#state === "freed") throw new ClosedError(`Cannot ${what} blob: freed`);
  }

  /**
   * Seals the size before the memfd is mapped or handed out, so that no
   * process can truncate it under a mapping (which would raise SIGBUS).
   */
  #sealSize(): void {
    if (this.#sizeSealed) return;
    check(this.#native.symbols.pk_add_seals(this.#fd, SIZE_SEALS), "fcntl(F_ADD_SEALS)");
    this.#sizeSealed = true;
  }

  /** The mapping, made now if needed: read-write while creating, else read-only. */
  #mapped(): Mapping {
    this.#sealSize();
    this.#mapping ??= Mapping.map(this.#native, this.#fd, this.size, {
      writable: this.#state === "creating",
    });
    return this.#mapping;
  }

  #ownView(): Uint8Array {
    this.#view ??= this.#mapped().openView();
    return this.#view;
  }
}
