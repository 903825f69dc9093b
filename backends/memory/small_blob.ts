/**
 * A small blob: on the heap until its fd is first asked for, then in a memfd
 * of its own (see `MemfdBlob`).
 *
 * @module
 */
import { check } from "../../native/errno.ts";
import { HeapViews } from "./heap_views.ts";
import { MemfdBlob, type MemfdContext } from "./memfd_blob.ts";
import { BlobMemfd } from "./memfd_seals.ts";

/**
 * A blob of at most `LARGE_BLOB` bytes. Its bytes live in an `ArrayBuffer`
 * until its fd is first asked for, and only then get a memfd: most small
 * objects never leave the process, and a memfd each would cost system calls
 * and a file descriptor per object. Asking for the fd while creating moves
 * the bytes into the memfd and detaches the views opened before; after seal
 * the memfd is a sealed copy and views stay valid.
 */
export class SmallMemfdBlob extends MemfdBlob {
  readonly #context: MemfdContext;
  /** The bytes before the blob has a memfd, and its copy in this process after seal. */
  #heap: ArrayBuffer | undefined;
  /** Open views of `#heap`. */
  readonly #heapViews = new HeapViews();
  /** The memfd, once the fd has been handed out. */
  #memfd: BlobMemfd | undefined;

  /**
   * @param context What the blobs of the store share.
   * @param size Size in bytes.
   * @param heap Memory of `size` bytes that holds the blob's bytes already, which the blob takes over.
   */
  constructor(context: MemfdContext, size: number, heap?: ArrayBuffer) {
    super(size);
    this.#context = context;
    this.#heap = heap ?? new ArrayBuffer(size);
  }

  get fd(): number {
    this.checkLive("use the fd of");
    return (this.#memfd ?? this.#share()).fd;
  }

  get seals(): number {
    this.checkLive("use the fd of");
    return (this.#memfd ?? this.#share()).seals();
  }

  openView(): Uint8Array {
    this.checkLive("open a view of");
    if (this.#heap) {
      // No page of a heap buffer can be made read-only: a reader of sealed bytes gets a copy.
      return this.state === "sealed"
        ? this.#heapViews.openCopy(this.#heap)
        : this.#heapViews.open(this.#heap);
    }
    return this.#memfd!.mapped(this.state === "creating").openView();
  }

  closeView(view: Uint8Array): void {
    if (this.#heapViews.close(view)) return;
    this.#memfd?.mapping?.closeView(view);
  }

  protected copyOut(offset: number, length: number): Uint8Array {
    if (this.#heap) return new Uint8Array(this.#heap.slice(offset, offset + length));
    return this.#memfd!.read(offset, length, this.state === "creating");
  }

  protected copyIn(offset: number, bytes: Uint8Array): void {
    if (this.#heap) new Uint8Array(this.#heap).set(bytes, offset);
    else this.#memfd!.write(offset, bytes);
  }

  seal(): void {
    this.checkSealable();
    // A memfd handed out while creating: other processes may have written into it.
    this.#memfd?.sealForEveryone();
    this.state = "sealed";
    this.#heapViews.closeAll();
  }

  settled(): Promise<void> | undefined {
    return this.#memfd?.settled();
  }

  async free(): Promise<void> {
    if (this.state === "freed") return;
    this.state = "freed";
    this.#heapViews.closeAll();
    this.#heap?.transfer(0);
    this.#heap = undefined;
    await this.#memfd?.free(false);
  }

  /** Hands the fd out for the first time: makes the memfd, and seals. */
  #share(): BlobMemfd {
    const heap = this.#heap!;
    const { symbols } = this.#context.native;
    const fd = new Int32Array(1);
    check(symbols.pk_memfd_prepare(BigInt(this.size), 1, fd, null), "memfd prepare");
    const written = symbols.pk_pwrite_all(fd[0]!, new Uint8Array(heap), BigInt(this.size), 0n);
    if (written < 0) this.#context.closer.close(fd[0]!);
    check(written, "pwrite");
    const memfd = this.#memfd = new BlobMemfd(this.#context, fd[0]!, this.size);
    if (this.state === "creating") {
      // The memfd takes over: writes from other processes land there.
      this.#heapViews.closeAll();
      heap.transfer(0);
      this.#heap = undefined;
      memfd.shareWhileCreating();
    } else {
      memfd.addFullSeals();
    }
    return memfd;
  }
}
