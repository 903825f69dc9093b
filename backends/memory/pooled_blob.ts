/**
 * A large blob in a memfd from the pool, mapped and faulted in already, that
 * may hold a freed object's bytes (see `MemfdBlob`).
 *
 * @module
 */
import { Mapping } from "../../native/mapping.ts";
import { MemfdBlob, type MemfdContext } from "./memfd_blob.ts";
import { BlobMemfd } from "./memfd_seals.ts";

/**
 * A blob of more than `LARGE_BLOB` bytes. It lives in a memfd from the
 * start, with a read-write mapping the pool has faulted in, and its bytes
 * are copied in and out of that mapping by C without a JS view (a view of a
 * large mapping is external memory that drives V8's garbage collector).
 *
 * While its fd stays in this process it seals without a system call, and
 * its memfd and mapping go back to the pool when freed, to be reused instead
 * of allocated afresh: the next blob zeroes what it does not overwrite of
 * the old bytes before they can be read (by {@link PooledMemfdBlob.read}, a
 * view, the fd, or after seal).
 */
export class PooledMemfdBlob extends MemfdBlob {
  readonly #context: MemfdContext;
  readonly #memfd: BlobMemfd;
  /** Whether the fd has been handed out, so that other processes may hold it. */
  #shared = false;
  /** Bytes at the start of a recycled memfd that may hold a freed object's data. */
  #stale: number;
  /** The first `#writtenTo` bytes hold no stale data: written, or zeroed. */
  #writtenTo = 0;

  /**
   * Takes ownership of a memfd that no other process holds.
   *
   * @param context What the blobs of the store share.
   * @param size Size in bytes.
   * @param fd The memfd, of `size` bytes.
   * @param mapping A read-write mapping of it.
   * @param stale How many bytes at the start hold a freed object's data, which the blob zeroes
   * unless they are overwritten before anyone can read them.
   */
  constructor(context: MemfdContext, size: number, fd: number, mapping: Mapping, stale: number) {
    super(size);
    this.#context = context;
    this.#memfd = new BlobMemfd(context, fd, size, mapping);
    this.#stale = Math.min(stale, size);
  }

  get fd(): number {
    this.checkLive("use the fd of");
    if (!this.#shared) this.#share();
    return this.#memfd.fd;
  }

  /** The memfd, for this process only: no seals are added and the mappings stay (see `Blob.localFd`). */
  get localFd(): number {
    this.checkLive("use the fd of");
    return this.#memfd.fd;
  }

  get seals(): number {
    this.checkLive("use the fd of");
    if (!this.#shared) this.#share();
    return this.#memfd.seals();
  }

  openView(): Uint8Array {
    this.checkLive("open a view of");
    this.#zeroStale();
    const memfd = this.#memfd;
    if (this.state === "sealed" && !this.#shared) {
      memfd.viewMapping ??= Mapping.map(this.#context.native, memfd.fd, this.size);
      return memfd.viewMapping.openView();
    }
    return memfd.mapped(this.state === "creating").openView();
  }

  closeView(view: Uint8Array): void {
    this.#memfd.viewMapping?.closeView(view);
    this.#memfd.mapping?.closeView(view);
  }

  protected copyOut(offset: number, length: number): Uint8Array {
    this.#zeroStale();
    return this.#memfd.read(offset, length, this.state === "creating");
  }

  protected copyIn(offset: number, bytes: Uint8Array): void {
    if (this.#stale > this.#writtenTo) {
      // Keep [0, writtenTo) free of stale data: zero any gap this write leaves.
      const gap = Math.min(offset, this.#stale) - this.#writtenTo;
      if (gap > 0) {
        this.#context.native.symbols.pk_zero(this.#memfd.at(this.#writtenTo, true), BigInt(gap));
      }
      this.#writtenTo = Math.max(this.#writtenTo, offset + bytes.length);
    }
    this.#memfd.write(offset, bytes);
  }

  seal(): void {
    this.checkSealable();
    this.#zeroStale();
    if (this.#shared) {
      this.#memfd.sealForEveryone();
      this.state = "sealed";
      return;
    }
    this.state = "sealed";
    this.#memfd.mapping?.closeViews();
  }

  settled(): Promise<void> | undefined {
    return this.#memfd.settled();
  }

  async free(): Promise<void> {
    if (this.state === "freed") return;
    this.state = "freed";
    await this.#memfd.free(!this.#shared);
  }

  /** Zeroes what is left of a freed object's data, before the bytes can be read. */
  #zeroStale(): void {
    if (this.#stale > this.#writtenTo) {
      this.#context.native.symbols.pk_zero(
        this.#memfd.at(this.#writtenTo, this.state === "creating"),
        BigInt(this.#stale - this.#writtenTo),
      );
    }
    this.#stale = 0;
  }

  /** Hands the fd out for the first time, with the seals the blob's state calls for. */
  #share(): void {
    this.#zeroStale();
    this.#shared = true;
    if (this.state === "creating") this.#memfd.shareWhileCreating();
    else this.#memfd.sealShared();
  }
}
