/**
 * A blob that took over a memfd a writer in another process filled (see
 * `MemfdBlob` and `MemfdBlobStore.allocateFrom`).
 *
 * @module
 */
import { InvalidArgumentError, PackiceError } from "../../core/errors.ts";
import { Errno, SystemError } from "../../native/errno.ts";
import { MemfdBlob, type MemfdContext } from "./memfd_blob.ts";
import { BlobMemfd } from "./memfd_seals.ts";

/**
 * A blob in a memfd another process filled and handed over, with the size
 * seals added. Sealing it cannot wait for that writer to unmap, so it gets
 * `F_SEAL_FUTURE_WRITE` at once and every seal once the writer's mapping is
 * gone, and readers wait for that in {@link AdoptedMemfdBlob.settled}.
 */
export class AdoptedMemfdBlob extends MemfdBlob {
  readonly #context: MemfdContext;
  readonly #memfd: BlobMemfd;

  /**
   * @param context What the blobs of the store share.
   * @param size Size in bytes.
   * @param fd The memfd, of `size` bytes, with the size seals added and no mapping.
   */
  constructor(context: MemfdContext, size: number, fd: number) {
    super(size);
    this.#context = context;
    this.#memfd = new BlobMemfd(context, fd, size);
  }

  get fd(): number {
    this.checkLive("use the fd of");
    return this.#memfd.fd;
  }

  /** The memfd, for this process only (see `Blob.localFd`): the same as {@link AdoptedMemfdBlob.fd}. */
  get localFd(): number {
    this.checkLive("use the fd of");
    return this.#memfd.fd;
  }

  get seals(): number {
    this.checkLive("use the fd of");
    return this.#memfd.seals();
  }

  openView(): Uint8Array {
    this.checkLive("open a view of");
    try {
      return this.#memfd.mapped(this.state === "creating").openView();
    } catch (error) {
      throw sealedByWriter(error);
    }
  }

  closeView(view: Uint8Array): void {
    this.#memfd.mapping?.closeView(view);
  }

  protected copyOut(offset: number, length: number): Uint8Array {
    return this.#memfd.read(offset, length, this.state === "creating");
  }

  protected copyIn(offset: number, bytes: Uint8Array): void {
    this.#memfd.write(offset, bytes);
  }

  /** A write or mapping its writer has sealed against since: see {@link sealedByWriter}. */
  protected override refused(error: unknown): unknown {
    return sealedByWriter(error);
  }

  seal(): void {
    this.checkSealable();
    this.#memfd.sealAdopted(() => this.state === "freed");
    this.state = "sealed";
  }

  settled(): Promise<void> | undefined {
    return this.#memfd.settled();
  }

  async free(): Promise<void> {
    if (this.state === "freed") return;
    this.state = "freed";
    await this.#memfd.free(false);
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
