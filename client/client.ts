import { ClosedError, InvalidArgumentError } from "../core/errors.ts";
import type { Blob } from "../core/blob.ts";
import { Access } from "../core/lease.ts";
import type { ObjectInfo } from "../core/object.ts";
import type { Acquired, Peer } from "../core/peer.ts";
import type { Meta } from "../core/validate.ts";
import { ObjectHandle } from "./object_handle.ts";
import { ObjectWriter } from "./object_writer.ts";

/** Options of {@link Client.put} and {@link Client.create}. */
export interface PutOptions {
  /** The object id; a fresh one when absent. */
  readonly id?: string;
  /** Metadata, a plain JSON object. */
  readonly meta?: Meta;
  /** TTL in milliseconds of the CREATE lease: an unfinished object expires after it. */
  readonly ttl?: number;
}

/** Options of {@link Client.get}. */
export interface GetOptions {
  /** TTL in milliseconds of the READ lease; without it the lease lasts until the handle closes. */
  readonly ttl?: number;
  /** In a cluster: only this host's copy, never one fetched from another daemon. */
  readonly local?: boolean;
}

/** What {@link Client.put} accepts. */
export type PutData = Uint8Array | ArrayBuffer | string | ReadableStream<Uint8Array>;

/**
 * An optional capability of a peer: store a whole object in one step. A peer
 * behind a network offers it so that {@link Client.put} costs one round trip
 * instead of acquire, write, seal and release.
 */
export interface DirectPut {
  /**
   * Creates, fills and seals an object.
   *
   * @param chunks The bytes, in order.
   * @param size Their total length.
   * @param options Id, metadata and TTL.
   * @returns The sealed object.
   */
  putObject(chunks: readonly Uint8Array[], size: number, options: PutOptions): Promise<ObjectInfo>;
}

/**
 * The Packice client: put, get, create, delete, stat and list objects on a
 * peer, in this process or behind a transport. Get one from `connect()`.
 *
 * @example Put and get
 * ```ts
 * import { connect } from "@packice/packice";
 * await using client = await connect();
 * const id = await client.put("hello", { meta: { type: "text/plain" } });
 * using handle = await client.get(id);
 * console.log(handle.size, handle.meta); // 5 { type: "text/plain" }
 * ```
 */
export class Client implements AsyncDisposable {
  readonly #peer: Peer;
  readonly #onClose: (() => Promise<void>) | undefined;
  #closing: Promise<void> | undefined;

  /**
   * Wraps a peer; most code gets a client from `connect()` instead.
   *
   * @param peer The peer to talk to.
   * @param onClose Called once by {@link Client.close}, to close what the client owns.
   */
  constructor(peer: Peer, onClose?: () => Promise<void>) {
    this.#peer = peer;
    this.#onClose = onClose;
  }

  /** The peer behind this client. */
  get peer(): Peer {
    return this.#peer;
  }

  /**
   * Stores bytes as a new sealed object.
   *
   * @param data Bytes, a string (UTF-8) or a stream of bytes.
   * @param options Id, metadata and TTL.
   * @returns The object id.
   */
  async put(data: PutData, options: PutOptions = {}): Promise<string> {
    this.#checkOpen();
    // Bytes need no conversion, nor a turn to wait for one.
    const { chunks, total } = data instanceof Uint8Array
      ? { chunks: [data], total: data.length }
      : await toChunks(data);
    if (offersDirectPut(this.#peer)) {
      // A peer may keep bytes given up with `transfer`; a user's bytes stay the user's.
      const fields = "transfer" in options ? withoutTransfer(options) : options;
      return (await this.#peer.putObject(chunks, total, fields)).id;
    }
    await using writer = await this.create(total, options);
    for (const chunk of chunks) await writer.write(chunk);
    await writer.seal();
    return writer.id;
  }

  /**
   * Opens a sealed object for reading. Close the handle (or use `using`) to
   * end the lease.
   *
   * @throws {NotFoundError} When there is no such object.
   * @throws {NotSealedError} When it is still being created.
   */
  async get(id: string, options: GetOptions = {}): Promise<ObjectHandle> {
    this.#checkOpen();
    const acquired = await this.#peer.acquire(id, Access.READ, options);
    try {
      const views = viewsOf(acquired);
      return new ObjectHandle(this.#peer, acquired, Array.isArray(views) ? views : await views);
    } catch (error) {
      await this.#peer.release(acquired.lease.id).catch(() => {});
      throw error;
    }
  }

  /**
   * Starts a new object of `size` bytes, to be written and sealed.
   *
   * @throws {AlreadyExistsError} When the id is taken.
   * @throws {CapacityExceededError} When the peer has no room.
   */
  async create(size: number, options: PutOptions = {}): Promise<ObjectWriter> {
    this.#checkOpen();
    const acquired = await this.#peer.acquire(options.id, Access.CREATE, {
      size,
      ...(options.meta === undefined ? {} : { meta: options.meta }),
      ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
    });
    return new ObjectWriter(this.#peer, acquired);
  }

  /**
   * Deletes an object. Readers holding it keep their bytes until they close.
   *
   * @throws {NotFoundError} When there is no such object.
   */
  async delete(id: string): Promise<void> {
    this.#checkOpen();
    const { lease } = await this.#peer.acquire(id, Access.WRITE);
    await this.#peer.discard(lease.id);
  }

  /** Whether an object exists, sealed or being created. */
  has(id: string): Promise<boolean> {
    this.#checkOpen();
    return this.#peer.has(id);
  }

  /** What is known of an object. */
  stat(id: string): Promise<ObjectInfo> {
    this.#checkOpen();
    return this.#peer.stat(id);
  }

  /** Every object on the peer. */
  list(): Promise<ObjectInfo[]> {
    this.#checkOpen();
    return this.#peer.list();
  }

  /** Closes the client and what it owns. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#onClose?.() ?? Promise.resolve();
    return this.#closing;
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkOpen(): void {
    if (this.#closing !== undefined) throw new ClosedError("Client is closed");
  }
}

function offersDirectPut(peer: Peer): peer is Peer & DirectPut {
  return typeof (peer as Partial<DirectPut>).putObject === "function";
}

/**
 * The bytes of each blob: a zero-copy view where the blob offers one, else a
 * copy. Synchronous when every blob has a view.
 */
function viewsOf(acquired: Acquired): Uint8Array[] | Promise<Uint8Array[]> {
  const views: Uint8Array[] = [];
  const blobs = acquired.blobs;
  for (let i = 0; i < blobs.length; i++) {
    const view = blobs[i]!.openView();
    if (view === undefined) return withCopies(blobs.slice(i), views);
    views.push(view);
  }
  return views;
}

async function withCopies(blobs: readonly Blob[], bytes: Uint8Array[]): Promise<Uint8Array[]> {
  for (const blob of blobs) bytes.push(blob.openView() ?? await blob.read(0, blob.size));
  return bytes;
}

function withoutTransfer(options: PutOptions): PutOptions {
  const { transfer: _, ...fields } = options as PutOptions & { transfer?: unknown };
  return fields;
}

const encoder = new TextEncoder();

async function toChunks(data: PutData): Promise<{ chunks: Uint8Array[]; total: number }> {
  if (data instanceof Uint8Array) return { chunks: [data], total: data.length };
  if (data instanceof ArrayBuffer) {
    return { chunks: [new Uint8Array(data)], total: data.byteLength };
  }
  if (typeof data === "string") {
    const bytes = encoder.encode(data);
    return { chunks: [bytes], total: bytes.length };
  }
  if (data instanceof ReadableStream) {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of data) {
      if (!(chunk instanceof Uint8Array)) {
        throw new InvalidArgumentError("Invalid stream: chunks must be Uint8Array");
      }
      chunks.push(chunk);
      total += chunk.length;
    }
    return { chunks, total };
  }
  throw new InvalidArgumentError(
    "Invalid data: expected Uint8Array, ArrayBuffer, string or ReadableStream",
  );
}
