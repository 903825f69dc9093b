import type { ObjectInfo } from "../core/object.ts";
import type { Meta } from "../core/validate.ts";
import type { ObjectHandle } from "./object_handle.ts";

/**
 * An object opened for reading before it may be whole here: one that a
 * daemon is still fetching from another, or any sealed object. Get one from
 * `Client.open`.
 *
 * - {@link ArrivingHandle.stream} yields the bytes in order, each as soon as
 *   the piece that holds it has arrived and verified: the first bytes come
 *   long before the last piece. It fails with a typed error when the object
 *   cannot be fetched whole; nothing unverified is ever yielded.
 * - {@link ArrivingHandle.bytes} waits for the seal, then gives the bytes as
 *   `ObjectHandle.bytes` does (zero-copy where the peer maps them).
 *
 * @example Stream an object a daemon is still fetching
 * ```ts ignore
 * import { connect } from "@packice/packice";
 * await using client = await connect("http://127.0.0.1:7070");
 * await using weights = await client.open("model.bin");
 * for await (const chunk of weights.stream()) console.log(chunk.length);
 * ```
 */
export class ArrivingHandle implements Disposable, AsyncDisposable {
  readonly #object: ObjectInfo;
  #body: ReadableStream<Uint8Array> | undefined;
  readonly #sealed: () => Promise<ObjectHandle>;
  #handle: Promise<ObjectHandle> | undefined;
  #closing: Promise<void> | undefined;

  /**
   * @internal Built by the client from the object as it began to arrive,
   * its bytes, and a read of the sealed object.
   */
  constructor(
    object: ObjectInfo,
    body: ReadableStream<Uint8Array>,
    sealed: () => Promise<ObjectHandle>,
  ) {
    this.#object = object;
    this.#body = body;
    this.#sealed = sealed;
  }

  /** The object id. */
  get id(): string {
    return this.#object.id;
  }

  /** Size in bytes. */
  get size(): number {
    return this.#object.size;
  }

  /** The object's metadata. */
  get meta(): Meta {
    return this.#object.meta;
  }

  /** The object as it was when opened: state `CREATING` while it was still arriving. */
  get info(): ObjectInfo {
    return this.#object;
  }

  /**
   * The bytes in order as they arrive and verify; copies, valid after the
   * handle closes. One stream per handle.
   *
   * @throws {TypeError} When called a second time.
   */
  stream(): ReadableStream<Uint8Array> {
    const body = this.#body;
    if (body === undefined) {
      throw new TypeError(`Cannot stream object ${this.id} again: a handle has one stream`);
    }
    this.#body = undefined;
    return body;
  }

  /**
   * The object's bytes once it is sealed here, as `ObjectHandle.bytes`; valid
   * until the handle closes.
   *
   * @throws {NotFoundError} When the object could not be fetched whole.
   */
  async bytes(): Promise<Uint8Array> {
    this.#handle ??= this.#sealed();
    return (await this.#handle).bytes;
  }

  /** Cancels a stream not taken, and ends the lease of {@link ArrivingHandle.bytes}. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const body = this.#body;
      this.#body = undefined;
      await body?.cancel().catch(() => {});
      const handle = await this.#handle?.catch(() => undefined);
      await handle?.close();
    })();
    return this.#closing;
  }

  /** Starts `close()` without waiting, for `using`. */
  [Symbol.dispose](): void {
    void this.close();
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
