import { type Acquired, offersDirectRead, type Peer } from "../core/peer.ts";
import type { ObjectInfo } from "../core/object.ts";
import type { Meta } from "../core/validate.ts";
import { UnsupportedError } from "../core/errors.ts";
import { checkRange } from "../core/range.ts";
import { copyOut } from "./readable_bytes.ts";

/** Chunk size of {@link ObjectHandle.stream} out of mapped or copied bytes. */
const VIEW_CHUNK = 1 << 20;
/**
 * Chunk size where each read goes to the peer (a lazy handle over HTTP): a
 * ranged GET costs about a millisecond of its own, so 256 MiB read in 1 MiB
 * ranges took 350 ms, in 4 MiB ranges 225 ms, as fast as one whole read.
 */
const RANGE_CHUNK = 4 << 20;

/**
 * A sealed object held for reading. While the handle is open the object's
 * bytes stay valid, even if the object is deleted meanwhile; closing it
 * detaches {@link ObjectHandle.bytes} and ends the lease.
 *
 * Where the peer maps the object (in process, a Unix socket) its bytes are
 * zero-copy views. Over HTTP, `client.get` copies the whole object into
 * memory before it resolves, unless it is given `lazy: true`: then nothing
 * is read until {@link ObjectHandle.stream} or {@link ObjectHandle.readInto}
 * asks, a range at a time.
 *
 * @example Read an object and release it
 * ```ts
 * import { connect } from "@packice/packice";
 * await using client = await connect();
 * const id = await client.put(new TextEncoder().encode("hello"));
 * using handle = await client.get(id);
 * console.log(new TextDecoder().decode(handle.bytes)); // "hello"
 * ```
 */
export class ObjectHandle implements Disposable, AsyncDisposable {
  readonly #peer: Peer;
  readonly #acquired: Acquired;
  /** None once {@link ObjectHandle.close} has run; undefined while each read goes to the blobs. */
  #bytes: readonly Uint8Array[] | undefined;
  #closing: Promise<void> | undefined;

  /**
   * @internal Built by the client from a READ lease and the blobs' bytes, or
   * without them for a handle whose reads go to the blobs (`lazy`).
   */
  constructor(peer: Peer, acquired: Acquired, bytes: Uint8Array[] | undefined) {
    this.#peer = peer;
    this.#acquired = acquired;
    this.#bytes = bytes;
  }

  /** The object id. */
  get id(): string {
    return this.#acquired.object.id;
  }

  /** Size in bytes. */
  get size(): number {
    return this.#acquired.object.size;
  }

  /** The object's metadata. */
  get meta(): Meta {
    return this.#acquired.object.meta;
  }

  /** Everything the peer knows of the object. */
  get info(): ObjectInfo {
    return this.#acquired.object;
  }

  /**
   * The object's bytes: a zero-copy, read-only view of shared memory where the
   * peer holds the object in memory, otherwise a copy. Length 0 once closed,
   * and once the lease ended under the handle (a lease TTL ran out, the
   * connection to the daemon was lost): then {@link ObjectHandle.stream} fails.
   * Objects of several blobs: the first blob (see {@link ObjectHandle.blobs}).
   *
   * @throws {UnsupportedError} For a handle got with `lazy: true` from a peer
   *   that maps no memory (HTTP): it holds no bytes; read them with `stream()`.
   */
  get bytes(): Uint8Array {
    return (this.#bytes ?? this.#notHeld())[0] ?? new Uint8Array(0);
  }

  /**
   * The bytes of each blob, as {@link ObjectHandle.bytes}.
   *
   * @throws {UnsupportedError} As {@link ObjectHandle.bytes}.
   */
  get blobs(): readonly Uint8Array[] {
    return this.#bytes ?? this.#notHeld();
  }

  #notHeld(): never {
    throw new UnsupportedError(
      `Cannot give the bytes of object ${this.id} whole: it was got with lazy: true from a ` +
        `peer that maps no memory (HTTP); read it with stream() or readInto(), or get it ` +
        `without lazy to copy it whole into memory`,
    );
  }

  /** Whether {@link ObjectHandle.close} has been called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Copies the object's bytes from `offset` into `target`, as many as fit
   * before the end of the blob that holds `offset`, and gives how many (0
   * at the end of the object): out of the mapping where the peer maps the
   * object, else read from the peer (over HTTP, one ranged GET of them).
   *
   * @throws {ClosedError} When the handle has been closed.
   * @throws {LeaseExpiredError} When its lease ended under it (a lease TTL
   *   ran out, the connection to the daemon was lost).
   */
  readInto(offset: number, target: Uint8Array): Promise<number> {
    return copyOut(this, this.#acquired.blobs, this.#bytes, offset, target);
  }

  /** The size of the chunks to read this handle's bytes in, as {@link ObjectHandle.stream} does. */
  get readChunk(): number {
    return this.#bytes === undefined ? RANGE_CHUNK : VIEW_CHUNK;
  }

  /**
   * Streams copies of the bytes, so chunks stay valid after the handle closes.
   * Nothing is read ahead of the reader: a handle got with `lazy: true` over
   * HTTP reads the object a chunk (4 MiB) at a time as the reader pulls. The
   * stream closes the handle when it ends, fails or is cancelled (a reader
   * that stops early leaks no lease), and fails if the handle is closed
   * before the end, or with `LEASE_EXPIRED` if its lease ended under it (a
   * lease TTL, a lost connection to the daemon).
   *
   * @param range The bytes from `start` up to `end` (exclusive) only; all by default.
   * @throws {InvalidArgumentError} When the range does not lie inside the object.
   */
  stream(range?: { readonly start: number; readonly end: number }): ReadableStream<Uint8Array> {
    let at = range?.start ?? 0;
    const end = range?.end ?? this.size;
    checkRange("read", at, end - at, this.size, this.id);
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const chunk = new Uint8Array(Math.min(this.readChunk, end - at));
          const length = chunk.length === 0 ? 0 : await this.readInto(at, chunk);
          if (length === 0) {
            await this.close();
            controller.close();
            return;
          }
          controller.enqueue(length === chunk.length ? chunk : chunk.slice(0, length));
          at += length;
        } catch (error) {
          await this.close();
          throw error;
        }
      },
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
  }

  /** Detaches the bytes and ends the lease. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      const blobs = this.#acquired.blobs;
      const bytes = this.#bytes ?? NO_BYTES;
      for (let index = 0; index < blobs.length; index++) {
        const view = bytes[index];
        if (view !== undefined) blobs[index]!.closeView(view);
      }
      // A copy that cannot be detached (an immutable one) is no longer handed out either. (Not
      // by emptying the list: setting an array's length is a call into the runtime.)
      this.#bytes = NO_BYTES;
      const peer = this.#peer;
      if (offersDirectRead(peer)) {
        peer.releaseQuietly(this.#acquired);
        this.#closing = RELEASED;
      } else {
        this.#closing = peer.release(this.#acquired.lease.id).catch(ignore);
      }
    }
    return this.#closing;
  }

  /** Starts `close()` without waiting, for `using`; views are detached at once. */
  [Symbol.dispose](): void {
    void this.close();
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The bytes of a closed handle. */
const NO_BYTES: readonly Uint8Array[] = Object.freeze([]);

/** What `close()` returns once the lease is ended without a promise of its own. */
const RELEASED: Promise<void> = Promise.resolve();

/** A lease that fails to release has ended already (expired, or its connection closed). */
function ignore(): void {}
