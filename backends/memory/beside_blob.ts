/**
 * A blob whose bytes are held beside the store: a small object the
 * Unix-socket server stored in C (see `PutsBeside`), sealed from the start.
 *
 * @module
 */
import type { BesideBytes } from "../../core/peer.ts";
import { check } from "../../native/errno.ts";
import { HeapViews } from "./heap_views.ts";
import { MemfdBlob, type MemfdContext } from "./memfd_blob.ts";

/**
 * A sealed blob whose bytes live beside the store ({@link BesideBytes}),
 * released when it is freed. Like a sealed small blob's, its views and reads
 * are copies, and its memfd, made when the fd is first asked for, is sealed
 * for good.
 */
export class BesideBlob extends MemfdBlob {
  readonly #context: MemfdContext;
  readonly #bytes: BesideBytes;
  /** Views open, once one has been. */
  #views: HeapViews | undefined;
  /** This blob's descriptor of the memfd, once asked for. */
  #fd: number | undefined;

  /**
   * @param context What the blobs of the store share.
   * @param size Size in bytes.
   * @param bytes The bytes, released when the blob is freed.
   */
  constructor(context: MemfdContext, size: number, bytes: BesideBytes) {
    super(size);
    this.#context = context;
    this.#bytes = bytes;
    this.state = "sealed";
  }

  get fd(): number {
    this.checkLive("use the fd of");
    return this.#fd ??= this.#bytes.memfd();
  }

  get seals(): number {
    return check(this.#context.native.symbols.pk_get_seals(this.fd), "fcntl(F_GET_SEALS)");
  }

  openView(): Uint8Array {
    this.checkLive("open a view of");
    const copy = new ArrayBuffer(this.size);
    this.#bytes.copy(0, new Uint8Array(copy));
    // The view holds the copy: an alias of it would not keep it alive.
    return (this.#views ??= new HeapViews()).adopt(copy);
  }

  closeView(view: Uint8Array): void {
    this.#views?.close(view);
  }

  protected copyOut(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.#bytes.copy(offset, out);
    return out;
  }

  protected copyIn(): void {
    // Never reached: a sealed blob refuses writes before copying.
  }

  seal(): void {
    this.checkSealable();
  }

  settled(): undefined {
    return undefined;
  }

  free(): Promise<void> {
    this.freeNow();
    return Promise.resolve();
  }

  /** {@link BesideBlob.free}, done in this call: nothing about it waits. */
  freeNow(): void {
    if (this.state === "freed") return;
    this.state = "freed";
    this.#views?.closeAll();
    if (this.#fd !== undefined) this.#context.closer.close(this.#fd);
    this.#fd = undefined;
    this.#bytes.release();
  }
}
