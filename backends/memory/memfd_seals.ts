/**
 * A blob's memfd, the mappings of it this process holds, and the seal
 * routines: which kernel seals a memfd gets when, and the unmapping they wait
 * for. Every kind of `MemfdBlob` seals through here.
 *
 * @module
 */
import { check, Errno } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import type { Native } from "../../native/load.ts";
import { Mapping } from "../../native/mapping.ts";
import { LARGE_BLOB } from "../../native/memfd_pool.ts";
import { WrongAccessError } from "../../core/errors.ts";
import { AdoptedSeal } from "./adopted_seal.ts";
import type { MemfdContext } from "./memfd_blob.ts";
import { FULL_SEALS, SIZE_SEALS } from "./seals.ts";

/** A range of this process's address space, detached from its mapping. */
type MappedRange = { pointer: NonNullable<Deno.PointerValue>; length: number };

/** A blob's memfd and this process's mappings of it; see the module comment. */
export class BlobMemfd {
  /** The memfd; another one once an adopted memfd's bytes were sealed as a copy. */
  fd: number;
  readonly #size: number;
  readonly #native: Native;
  readonly #context: MemfdContext;
  /**
   * The mapping bytes are copied through: the pool's read-write one for a
   * large blob, kept while the blob is private; else made on demand,
   * read-write while creating and read-only once sealed.
   */
  mapping: Mapping | undefined;
  /** The read-only mapping that views of a sealed private large blob come from. */
  viewMapping: Mapping | undefined;
  /** Unmapping and sealing still running on another thread. */
  #sealing: Promise<void> | undefined;
  /** The seal of a memfd another process filled, while the writer may still map it. */
  #adoptedSeal: AdoptedSeal | undefined;

  constructor(context: MemfdContext, fd: number, size: number, mapping?: Mapping) {
    this.#context = context;
    this.#native = context.native;
    this.fd = fd;
    this.#size = size;
    this.mapping = mapping;
  }

  /** The mapping of the memfd, made now if needed: read-write or read-only. */
  mapped(writable: boolean): Mapping {
    this.mapping ??= Mapping.map(this.#native, this.fd, this.#size, { writable });
    return this.mapping;
  }

  /** The address of byte `offset` in {@link BlobMemfd.mapped}. */
  at(offset: number, writable: boolean): Deno.PointerValue {
    return Deno.UnsafePointer.offset(this.mapped(writable).pointer!, offset);
  }

  /** Copies bytes out: from the mapping for a large blob, with `pread` for a small one. */
  read(offset: number, length: number, writable: boolean): Uint8Array {
    const bytes = new Uint8Array(length);
    const { symbols } = this.#native;
    if (this.#size > LARGE_BLOB) {
      symbols.pk_copy_out(bytes, this.at(offset, writable), BigInt(length));
    } else {
      check(symbols.pk_pread_all(this.fd, bytes, BigInt(length), BigInt(offset)), "pread");
    }
    return bytes;
  }

  /** Copies bytes in: into the mapping for a large blob, with `pwrite` for a small one. */
  write(offset: number, bytes: Uint8Array): void {
    const { symbols } = this.#native;
    if (this.#size > LARGE_BLOB) {
      symbols.pk_copy_in(this.at(offset, true), bytes, BigInt(bytes.length));
    } else if (bytes.length > 0) {
      check(
        symbols.pk_pwrite_all(this.fd, bytes, BigInt(bytes.length), BigInt(offset)),
        "pwrite",
      );
    }
  }

  /** The memfd's seals as the kernel reports them (`F_SEAL_*` bits). */
  seals(): number {
    return check(this.#native.symbols.pk_get_seals(this.fd), "fcntl(F_GET_SEALS)");
  }

  /** See `MemfdBlob.settled`. */
  settled(): Promise<void> | undefined {
    this.#adoptedSeal?.poke();
    return this.#sealing?.catch(() => {});
  }

  addSeals(seals: number): void {
    check(this.#native.symbols.pk_add_seals(this.fd, seals), "fcntl(F_ADD_SEALS)");
  }

  /**
   * Adds every seal. EBUSY means a writable mapping of the blob is still
   * open in another process: the blob then keeps `F_SEAL_FUTURE_WRITE`.
   */
  addFullSeals(): void {
    const result = this.#native.symbols.pk_add_seals(this.fd, FULL_SEALS);
    if (result === -Errno.EBUSY) this.addSeals(SIZE_SEALS | Linux.F_SEAL_FUTURE_WRITE);
    else check(result, "fcntl(F_ADD_SEALS)");
  }

  /**
   * Seals a memfd handed out while creating: the size seals now, so that no
   * process can truncate it under another's mapping, and this process's
   * read-write mapping goes on another thread while the writer works, so
   * that at seal no mapping of ours keeps `F_SEAL_WRITE` out.
   */
  shareWhileCreating(): void {
    this.addSeals(SIZE_SEALS);
    const range = this.mapping?.detach();
    this.mapping = undefined;
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
  sealForEveryone(): void {
    const range = this.mapping?.detach();
    this.mapping = undefined;
    if (range) check(this.#native.symbols.pk_munmap(range.pointer, BigInt(range.length)), "munmap");
    const result = this.#native.symbols.pk_add_seals(this.fd, FULL_SEALS);
    if (result === -Errno.EBUSY) {
      throw new WrongAccessError(
        "Cannot seal blob: a writable mapping of it is still open in another process",
      );
    }
    check(result, "fcntl(F_ADD_SEALS)");
  }

  /**
   * Seals a sealed large blob whose fd is handed out for the first time. Its
   * mappings, made before the seals, keep `F_SEAL_WRITE` out, even the
   * read-only one. While views of it are open, `F_SEAL_FUTURE_WRITE |
   * F_SEAL_SEAL` (with the size seals) stop every other process from writing,
   * and only this process keeps its mappings. Otherwise the mappings go, the
   * read-write one on another thread, before every seal is added: unmapping
   * a large written mapping costs more than writing it.
   */
  sealShared(): void {
    if (this.viewMapping && this.viewMapping.openViews > 0) {
      this.addSeals(SIZE_SEALS | Linux.F_SEAL_FUTURE_WRITE | Linux.F_SEAL_SEAL);
      return;
    }
    this.viewMapping?.close();
    this.viewMapping = undefined;
    const range = this.mapping?.detach();
    this.mapping = undefined;
    this.addSeals(SIZE_SEALS | Linux.F_SEAL_FUTURE_WRITE);
    if (range) this.#unmapAndSeal(range);
    else this.addFullSeals();
  }

  /**
   * Seals a blob whose memfd another process filled and may still map
   * read-write: `F_SEAL_FUTURE_WRITE` now (nobody maps it writable or
   * writes to it any more), every seal once that mapping is gone, or a
   * sealed copy of the bytes if it stays or its writer has forbidden more
   * seals; see {@link AdoptedSeal}.
   *
   * @param freed Whether the blob has been freed meanwhile.
   */
  sealAdopted(freed: () => boolean): void {
    const { symbols } = this.#native;
    const result = symbols.pk_add_seals(this.fd, FULL_SEALS);
    if (result === 0) return;
    // Else EBUSY, the writer's mapping is still there, or EPERM, the writer has forbidden
    // more seals (then this one fails too, and only a copy can be sealed).
    symbols.pk_add_seals(this.fd, Linux.F_SEAL_FUTURE_WRITE);
    const seal = this.#adoptedSeal = new AdoptedSeal(this.#native, this.fd, this.#size);
    const filled = this.fd;
    const sealing: Promise<void> = seal.done
      .then((sealed) => {
        if (sealed === filled) return;
        if (freed()) {
          this.#native.symbols.pk_close(sealed);
          return;
        }
        // A mapping made meanwhile (a digest, say) shows the memfd the writer keeps.
        this.mapping?.close();
        this.mapping = undefined;
        this.fd = sealed;
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
   * Unmaps and closes the memfd, or gives a private large one back to the
   * pool; the work runs on other threads, after any sealing under way.
   *
   * @param recycle Whether no other process holds the memfd, so that the pool may take it back.
   */
  async free(recycle: boolean): Promise<void> {
    this.#adoptedSeal?.stop();
    const { symbols } = this.#native;
    const views = this.viewMapping?.detach();
    this.viewMapping = undefined;
    if (views) {
      this.#context.tasks.track(
        "Unmapping views",
        symbols.pk_munmap_nb(views.pointer, BigInt(views.length))
          .then((result) => check(result, "munmap")),
      );
    }
    const range = this.mapping?.detach();
    this.mapping = undefined;
    if (
      range && recycle && this.#size > LARGE_BLOB &&
      this.#context.pool.recycle(this.fd, range.pointer, range.length, this.#size)
    ) {
      return;
    }
    // Work on another thread may still use the fd and the mapping: close them only after it.
    await this.settled();
    if (this.#size <= LARGE_BLOB) {
      if (range) check(symbols.pk_munmap(range.pointer, BigInt(range.length)), "munmap");
      this.#context.closer.close(this.fd);
      return;
    }
    const result = await symbols.pk_unmap_close_nb(
      this.fd,
      range?.pointer ?? null,
      BigInt(range?.length ?? 0),
    );
    check(result, "munmap and close");
  }

  /** Unmaps a large writable mapping on another thread, then adds every seal. */
  #unmapAndSeal(range: MappedRange): void {
    const sealing: Promise<void> = this.#native.symbols.pk_unmap_seal_nb(
      this.fd,
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
}
