import { AlreadySealedError, ClosedError } from "../core/errors.ts";
import type { ObjectInfo } from "../core/object.ts";
import { checkRange } from "../core/range.ts";
import type { Acquired, Peer } from "../core/peer.ts";

/**
 * A new object being written. Fill {@link ObjectWriter.buffer} in place (zero
 * copy where the peer holds memory) or call {@link ObjectWriter.write}, then
 * {@link ObjectWriter.seal}. Closing an unsealed writer aborts it.
 *
 * @example Write in place and seal
 * ```ts
 * import { connect } from "@packice/packice";
 * await using client = await connect();
 * await using writer = await client.create(3, { id: "abc" });
 * await writer.write(new Uint8Array([1, 2, 3]));
 * await writer.seal();
 * ```
 */
export class ObjectWriter implements AsyncDisposable {
  readonly #peer: Peer;
  readonly #acquired: Acquired;
  #buffer: Uint8Array | undefined;
  #bufferOpened = false;
  #cursor = 0;
  #state: "open" | "sealed" | "aborted" = "open";
  #ending: Promise<unknown> | undefined;

  /** @internal Built by the client from a CREATE lease. */
  constructor(peer: Peer, acquired: Acquired) {
    this.#peer = peer;
    this.#acquired = acquired;
  }

  /** The new object's id. */
  get id(): string {
    return this.#acquired.object.id;
  }

  /** Size in bytes. */
  get size(): number {
    return this.#acquired.object.size;
  }

  /**
   * A writable zero-copy view of the object's memory, or undefined when the
   * peer has none (files, remote peers): then use {@link ObjectWriter.write}.
   * Opened on first use (a peer may write faster without one); detached at
   * seal or abort.
   */
  get buffer(): Uint8Array | undefined {
    if (!this.#bufferOpened && this.#state === "open") {
      this.#bufferOpened = true;
      const blobs = this.#acquired.blobs;
      this.#buffer = blobs.length === 1 ? blobs[0]!.openView() : undefined;
    }
    return this.#buffer;
  }

  /**
   * Copies bytes into the object at `offset`, by default right after the
   * previous write.
   */
  async write(bytes: Uint8Array, offset: number = this.#cursor): Promise<void> {
    this.#checkOpen();
    const blob = this.#acquired.blobs[0]!;
    if (this.#buffer !== undefined && this.#acquired.blobs.length === 1) {
      checkRange("write", offset, bytes.length, this.size, this.id);
      this.#buffer.set(bytes, offset);
    } else {
      await blob.write(offset, bytes);
    }
    this.#cursor = offset + bytes.length;
  }

  /** Seals the object and ends the lease: from now on it is readable and immutable. */
  async seal(): Promise<ObjectInfo> {
    this.#checkOpen();
    this.#state = "sealed";
    const leaseId = this.#acquired.lease.id;
    const sealing = this.#peer.seal(leaseId).then(
      async (info) => {
        await this.#peer.release(leaseId).catch(() => {});
        return info;
      },
      async (error) => {
        // Releasing an unsealed CREATE lease discards the object.
        this.#state = "aborted";
        await this.#peer.release(leaseId).catch(() => {});
        throw error;
      },
    );
    this.#ending = sealing.catch(() => {});
    return await sealing;
  }

  /** Discards the unfinished object. Idempotent; a no-op after seal. */
  abort(): Promise<void> {
    if (this.#state === "open") {
      this.#state = "aborted";
      this.#ending = this.#peer.discard(this.#acquired.lease.id).catch(() => {});
    }
    return Promise.resolve(this.#ending).then(() => {});
  }

  /** Aborts if not sealed, and waits for the lease to end. */
  close(): Promise<void> {
    return this.abort();
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkOpen(): void {
    if (this.#state === "sealed") {
      throw new AlreadySealedError(`Cannot write object ${this.id}: sealed`);
    }
    if (this.#state === "aborted") throw new ClosedError(`Writer of ${this.id} was aborted`);
  }
}
