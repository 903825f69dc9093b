import { ClosedError, InvalidArgumentError } from "../core/errors.ts";
import { MemfdSpool, storeSpool } from "../native/spool.ts";
import { loadNative } from "../native/load.ts";
import type { Blob } from "../core/blob.ts";
import { deleteObject } from "../core/delete_in_steps.ts";
import { Access } from "../core/lease.ts";
import { DEFAULT_PAGE, listPageOf } from "../core/list_page.ts";
import type { ObjectInfo } from "../core/object.ts";
import {
  type Acquired,
  type AcquireOptions,
  type DirectPutOptions,
  offersArrivingRead,
  offersDirectPut,
  offersDirectRead,
  offersIdPut,
  type Peer,
  type PutOptions,
  type StreamPut,
} from "../core/peer.ts";
import { metricsOf } from "../core/metrics.ts";
import { ObjectHandle } from "./object_handle.ts";
import { ArrivingHandle } from "./arriving_handle.ts";
import { ObjectWriter } from "./object_writer.ts";
import { fetchThrough } from "./fetch_through.ts";

export type { PutOptions };

/** Options of {@link Client.get}. */
export interface GetOptions {
  /** TTL in milliseconds of the READ lease; without it the lease lasts until the handle closes. */
  readonly ttl?: number;
  /** In a cluster: only this host's copy, never one fetched from another daemon. */
  readonly local?: boolean;
  /**
   * Read no bytes before they are asked for. Where the peer maps the object
   * (in process, a Unix socket) nothing changes: the handle's bytes are
   * zero-copy views. Where it maps none (HTTP), `get` otherwise copies the
   * whole object into memory before it resolves; with `lazy` it reads
   * nothing, {@link ObjectHandle.stream} and {@link ObjectHandle.readInto}
   * read ranges as they are asked for (a big object streams in about a MiB
   * of memory, its first bytes come at once), and `bytes` and `blobs` throw
   * `UnsupportedError`.
   */
  readonly lazy?: boolean;
}

/** What {@link Client.put} accepts. */
export type PutData = Uint8Array | ArrayBuffer | string | ReadableStream<Uint8Array>;

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
  put(data: PutData, options: PutOptions = NO_OPTIONS): Promise<string> {
    // A promise chain, not an async function: its frame would cost a small put more than the chain.
    try {
      this.#checkOpen();
      if (data instanceof ReadableStream) return this.#putStream(data, options);
      // Bytes need no conversion, nor a turn to wait for one.
      if (data instanceof Uint8Array) return this.#putBytes(data, options);
      const { chunks, total } = toChunks(data);
      return this.#putChunks(chunks, total, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #putBytes(bytes: Uint8Array, options: PutOptions): Promise<string> {
    // Only the id is wanted: a peer that answers with it alone makes no info.
    if (offersIdPut(this.#peer) && !("transfer" in options)) {
      return this.#peer.putId(bytes, options);
    }
    return this.#putChunks([bytes], bytes.length, options);
  }

  #putChunks(
    chunks: readonly Uint8Array[],
    total: number,
    options: PutOptions,
  ): Promise<string> {
    if (offersDirectPut(this.#peer)) {
      // A peer may keep bytes given up with `transfer`; a user's bytes stay the user's.
      const fields = "transfer" in options ? withoutTransfer(options) : options;
      return this.#peer.putObject(chunks, total, fields).then(idOf);
    }
    return this.#putWritten(chunks, total, options);
  }

  /** Puts through a CREATE lease: create, a write per chunk, seal. */
  async #putWritten(
    chunks: readonly Uint8Array[],
    total: number,
    options: PutOptions,
  ): Promise<string> {
    await using writer = await this.create(total, options);
    for (const chunk of chunks) await writer.write(chunk);
    await writer.seal();
    return writer.id;
  }

  /**
   * Puts a stream of a length not known ahead with bounded memory: the first
   * {@link SPOOL_AFTER} bytes are gathered in memory, and a longer stream
   * goes on into a memfd that is never mapped here (see `MemfdSpool`). That
   * memfd becomes the object's blob without a copy where the peer keeps
   * blobs in memfds (a local daemon, a `MemoryPeer`), else it is copied in
   * chunks. Without the native library a stream is gathered in memory.
   */
  async #putStream(stream: ReadableStream<Uint8Array>, options: PutOptions): Promise<string> {
    const reader = stream.getReader();
    const read = async () => {
      const next = await reader.read();
      if (!next.done && !(next.value instanceof Uint8Array)) {
        throw new InvalidArgumentError("Invalid stream: chunks must be Uint8Array");
      }
      return next;
    };
    try {
      const chunks: Uint8Array[] = [];
      let total = 0;
      const native = loadNative();
      for (;;) {
        const next = await read();
        if (next.done) return await this.#putChunks(chunks, total, options);
        chunks.push(next.value);
        total += next.value.length;
        if (total > SPOOL_AFTER && native !== undefined) break;
      }
      using spool = new MemfdSpool(native!);
      for (const chunk of chunks.splice(0)) spool.write(chunk);
      for (let next = await read(); !next.done; next = await read()) spool.write(next.value);
      return await this.#putSpool(spool, options);
    } catch (error) {
      await reader.cancel(error).catch(() => {});
      throw error;
    } finally {
      reader.releaseLock();
    }
  }

  /**
   * Makes the bytes of a spool an object: its memfd where the peer takes
   * one, else a copy in chunks, in one request where the peer offers it.
   */
  async #putSpool(spool: MemfdSpool, options: PutOptions): Promise<string> {
    const size = spool.size;
    const peer = this.#peer as Peer & Partial<StreamPut>;
    if (typeof peer.putStream === "function") {
      return (await peer.putStream(spool.chunks(SPOOL_CHUNK), size, options)).id;
    }
    const { size: _, ...fields } = createOptions(size, options);
    return (await storeSpool(this.#peer, spool, options.id, fields, SPOOL_CHUNK)).id;
  }

  /**
   * Opens a sealed object for reading. Close the handle (or use `using`) to
   * end the lease.
   *
   * @throws {NotFoundError} When there is no such object.
   * @throws {NotSealedError} When it is still being created.
   */
  get(id: string, options: GetOptions = {}): Promise<ObjectHandle> {
    try {
      this.#checkOpen();
      const peer = this.#peer;
      const handleOf = options.lazy === true ? this.#lazyHandleOf : this.#handleOf;
      // The handle is made as the lease's reply is handled, where the peer offers it.
      if (offersDirectRead(peer)) return peer.acquireRead(id, options, handleOf);
      // A promise chain, not an async function: its frame would cost a get more than the chain.
      return peer.acquire(id, Access.READ, options).then(handleOf);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The handle of a READ lease; the lease is released when its bytes cannot be had. */
  readonly #handleOf = (acquired: Acquired): ObjectHandle | Promise<ObjectHandle> => {
    try {
      const views = viewsOf(acquired);
      if (Array.isArray(views)) return new ObjectHandle(this.#peer, acquired, views);
      return views.then(
        (copies) => new ObjectHandle(this.#peer, acquired, copies),
        (error) => this.#releaseThenThrow(acquired, error),
      );
    } catch (error) {
      return this.#releaseThenThrow(acquired, error);
    }
  };

  /** The handle of a READ lease with views of its blobs where each has one, else reading them. */
  readonly #lazyHandleOf = (acquired: Acquired): ObjectHandle => {
    return new ObjectHandle(this.#peer, acquired, viewsIfAll(acquired.blobs));
  };

  async #releaseThenThrow(acquired: Acquired, error: unknown): Promise<never> {
    const peer = this.#peer;
    // A lease from `acquireRead` may be one its peer ends only through its object.
    if (offersDirectRead(peer)) peer.releaseQuietly(acquired);
    else await peer.release(acquired.lease.id).catch(() => {});
    throw error;
  }

  /**
   * Opens an object for reading as it arrives: where the peer is fetching it
   * from another daemon (or will now), {@link ArrivingHandle.stream} yields
   * its verified bytes in order long before the last piece lands, and
   * {@link ArrivingHandle.bytes} waits for the seal. A sealed object held
   * here is opened as {@link Client.get} does. Close the handle (or use
   * `using`).
   *
   * @throws {NotFoundError} When no one holds the object.
   */
  async open(id: string, options: GetOptions = {}): Promise<ArrivingHandle> {
    this.#checkOpen();
    const peer = this.#peer;
    const arriving = options.local === true || !offersArrivingRead(peer)
      ? undefined
      : await peer.readArriving(id);
    const sealed = () => this.get(id, options);
    if (arriving !== undefined) return new ArrivingHandle(arriving.object, arriving.body, sealed);
    // Held here: the stream's lease ends with it; `bytes` takes one of its own.
    const handle = await this.get(id, options);
    return new ArrivingHandle(handle.info, handle.stream(), sealed);
  }

  /**
   * Starts a new object of `size` bytes, to be written and sealed.
   *
   * @throws {AlreadyExistsError} When the id is taken.
   * @throws {CapacityExceededError} When the peer has no room.
   */
  async create(size: number, options: PutOptions = {}): Promise<ObjectWriter> {
    this.#checkOpen();
    const acquired = await this.#peer.acquire(
      options.id,
      Access.CREATE,
      createOptions(size, options),
    );
    return new ObjectWriter(this.#peer, acquired);
  }

  /**
   * Deletes an object. Readers holding it keep their bytes until they close.
   *
   * @throws {NotFoundError} When there is no such object.
   */
  delete(id: string): Promise<void> {
    try {
      this.#checkOpen();
      return deleteObject(this.#peer, id);
    } catch (error) {
      return Promise.reject(error);
    }
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

  /**
   * Every object on the peer; over a transport, pulled a page at a time.
   * For a cache too big to hold as one array, walk {@link Client.objects}.
   */
  list(): Promise<ObjectInfo[]> {
    this.#checkOpen();
    return this.#peer.list();
  }

  /**
   * Every object on the peer, in put order, fetched a page at a time as the
   * loop asks: walks a cache of any size holding one page. An object
   * deleted meanwhile is not listed once its page is fetched; none listed is
   * repeated, and objects put meanwhile come at the end.
   *
   * @param options `pageSize`: objects fetched at a time, 1 to 10,000 (1,000).
   * @throws {InvalidArgumentError} When `pageSize` is out of range.
   *
   * @example Total the bytes of a big cache
   * ```ts
   * import { connect } from "@packice/packice";
   * await using client = await connect();
   * let bytes = 0;
   * for await (const info of client.objects({ pageSize: 5000 })) bytes += info.size;
   * console.log(bytes);
   * ```
   */
  async *objects(options: { readonly pageSize?: number } = {}): AsyncGenerator<ObjectInfo> {
    this.#checkOpen();
    const limit = options.pageSize ?? DEFAULT_PAGE;
    let after: string | undefined;
    do {
      const page = await listPageOf(this.#peer, after === undefined ? { limit } : { after, limit });
      yield* page.objects;
      after = page.next;
    } while (after !== undefined);
  }

  /**
   * The peer's figures by name, without the `packice_` prefix, as `/metrics`
   * prints them: objects, bytes, capacity, leases, hits, misses, evictions
   * and expirations of every peer, what the peer adds (tiers), and for a
   * daemon on a Unix socket its server's counters (`uds_clients`,
   * `uds_requests_total{op="open"}`, …), or over HTTP what the server's
   * `/metrics` prints. A name ending in `_total` is a counter.
   *
   * @example
   * ```ts
   * import { connect } from "@packice/packice";
   * await using client = await connect();
   * await client.put("x");
   * console.log((await client.metrics()).objects); // 1
   * ```
   */
  async metrics(): Promise<Record<string, number>> {
    this.#checkOpen();
    const [stats, extra] = await Promise.all([this.#peer.stats(), this.#peer.metrics?.()]);
    return metricsOf(stats, extra);
  }

  /**
   * Reads a URL through Packice, as `fetch` does: from the cluster when any
   * member holds the response, from the origin only when none does (one
   * download per cluster, by the daemon), stored with the origin's status
   * and headers. The body streams from the object (mapped shared memory on
   * a Unix socket); its id is in the `Packice-Object` header, so
   * `client.get(id)` reads the bytes in place with no copy. Headers such as
   * `Authorization` go to the origin and are never stored. `init.cache` is
   * honoured as by `fetch` (see `ReadThrough`). A `Range` of one span is
   * answered with a 206 of those bytes, cut from the stored object (the
   * origin is asked for the whole, once per cluster).
   *
   * @example Read a URL through the local daemon
   * ```ts ignore
   * import { connect } from "@packice/packice";
   * await using client = await connect("local");
   * const response = await client.fetch("https://example.com/model.bin");
   * const bytes = new Uint8Array(await response.arrayBuffer());
   * ```
   *
   * @throws {TypeError} For a request other than GET, or a miss with `only-if-cached`.
   * @throws {StoreUnavailableError} When the origin cannot be reached.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    this.#checkOpen();
    return fetchThrough(this.#peer, (id) => this.get(id, LAZY), input, init);
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

/**
 * The bytes of each blob: a zero-copy view where the blob offers one, else a
 * copy. Synchronous when every blob has a view.
 */
function viewsOf(acquired: Acquired): Uint8Array[] | Promise<Uint8Array[]> {
  const blobs = acquired.blobs;
  const views = new Array<Uint8Array>(blobs.length);
  for (let i = 0; i < blobs.length; i++) {
    const view = blobs[i]!.openView();
    if (view === undefined) {
      views.length = i;
      return withCopies(blobs.slice(i), views);
    }
    views[i] = view;
  }
  return views;
}

/** A zero-copy view of each blob, or undefined when a blob has none. */
function viewsIfAll(blobs: readonly Blob[]): Uint8Array[] | undefined {
  const views: Uint8Array[] = [];
  for (const blob of blobs) {
    const view = blob.openView();
    if (view === undefined) {
      views.forEach((opened, index) => blobs[index]!.closeView(opened));
      return undefined;
    }
    views.push(view);
  }
  return views;
}

async function withCopies(blobs: readonly Blob[], bytes: Uint8Array[]): Promise<Uint8Array[]> {
  for (const blob of blobs) bytes.push(blob.openView() ?? await blob.read(0, blob.size));
  return bytes;
}

/** The options of a get whose bytes a body streams. */
const LAZY: GetOptions = Object.freeze({ lazy: true });

/** The options of a put given none: one object, not one per put. */
const NO_OPTIONS: PutOptions = Object.freeze({});

function idOf(info: ObjectInfo): string {
  return info.id;
}

function withoutTransfer(options: PutOptions): PutOptions {
  const { transfer: _, ...fields } = options as DirectPutOptions;
  return fields;
}

/** The options of the CREATE lease of `put` and `create`: a TTL is the object's and the lease's. */
function createOptions(size: number, options: PutOptions): AcquireOptions {
  return {
    size,
    ...(options.meta === undefined ? {} : { meta: options.meta }),
    ...(options.ttl === undefined ? {} : { ttl: options.ttl, objectTtl: options.ttl }),
  };
}

/** Bytes of a stream gathered in memory before the rest goes into a memfd. */
const SPOOL_AFTER = 4 << 20;
/** Bytes per write when a spool is copied into an object. */
const SPOOL_CHUNK = 1 << 20;

const encoder = new TextEncoder();

function toChunks(data: Exclude<PutData, ReadableStream>): { chunks: Uint8Array[]; total: number } {
  if (data instanceof Uint8Array) return { chunks: [data], total: data.length };
  if (data instanceof ArrayBuffer) {
    return { chunks: [new Uint8Array(data)], total: data.byteLength };
  }
  if (typeof data === "string") {
    const bytes = encoder.encode(data);
    return { chunks: [bytes], total: bytes.length };
  }
  throw new InvalidArgumentError(
    "Invalid data: expected Uint8Array, ArrayBuffer, string or ReadableStream",
  );
}
