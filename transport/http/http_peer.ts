/**
 * HttpPeer: one idea, the `Peer` API spoken as HTTP requests to a server of
 * `server.ts` (leases renewed on timers, bytes moved in request bodies and
 * ranges). The routes and their bodies are in `protocol.ts`, errors in
 * `errors.ts`.
 *
 * @module
 */
import type { Blob } from "../../core/blob.ts";
import type {
  Acquired,
  AcquireOptions,
  ArrivingObject,
  ArrivingRead,
  DirectPut,
  Peer,
  PeerStats,
  PutOptions,
  StreamPut,
} from "../../core/peer.ts";
import {
  ClosedError,
  InvalidArgumentError,
  NotFoundError,
  ProtocolError,
  StoreUnavailableError,
  UnknownLeaseError,
  UnsupportedError,
} from "../../core/errors.ts";
import type { DaemonStatus, StatusSource } from "../../core/status.ts";
import type { OriginRequest } from "../origin_fetch.ts";
import type { Access, Lease } from "../../core/lease.ts";
import {
  DEFAULT_PAGE,
  listInPages,
  type ListPage,
  type ListPageOptions,
  listPageRequest,
} from "../../core/list_page.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { checkRange } from "../../core/range.ts";
import { validateMeta, validateObjectId } from "../../core/validate.ts";
import { errorOf } from "./errors.ts";
import { arrivingOf } from "./arriving.ts";
import {
  type AcquireBody,
  API_PREFIX,
  Header,
  headerJson,
  leasePath,
  objectPath,
  type RenewBody,
} from "./protocol.ts";

/** Options of {@link HttpPeer}. */
export interface HttpPeerOptions {
  /** The server's bearer token. */
  readonly token?: string;
}

/**
 * A peer on another host, over HTTP: the same {@link Peer} API, with blobs
 * that copy bytes over the network (`openView()` gives undefined; `read` is a
 * ranged GET, `write` a PATCH at an offset).
 *
 * Leases taken without a TTL get the server's, and this peer renews them
 * until they are released, so they last as long as they would in process
 * while a client that vanishes loses them. Errors from the server are
 * rebuilt as the same classes a local peer throws. Closing releases the
 * leases still held.
 *
 * @example Talk to a daemon serving HTTP
 * ```ts ignore
 * import { Client, HttpPeer } from "@packice/packice";
 * await using peer = await HttpPeer.connect("http://127.0.0.1:7070", { token: "secret" });
 * const client = new Client(peer);
 * const id = await client.put("hello");
 * using handle = await client.get(id);
 * console.log(new TextDecoder().decode(handle.bytes)); // "hello"
 * ```
 */
export class HttpPeer implements Peer, DirectPut, StreamPut, StatusSource, ArrivingRead {
  readonly #base: string;
  readonly #authorization: string | undefined;
  readonly #client: Deno.HttpClient;
  /** Leases this peer holds, each with the timer that renews it, if any. */
  readonly #held = new Map<string, ReturnType<typeof setInterval> | undefined>();
  #closing: Promise<void> | undefined;

  /**
   * Connects and checks that the server answers and accepts the token.
   *
   * @param url The server's base URL, `http://` or `https://`.
   * @param options The token.
   * @returns The peer.
   * @throws {UnauthorizedError} When the token is missing or wrong.
   * @throws {StoreUnavailableError} When no server answers at the URL.
   */
  static async connect(url: string | URL, options: HttpPeerOptions = {}): Promise<HttpPeer> {
    const peer = new HttpPeer(url, options);
    try {
      await peer.stats();
    } catch (error) {
      await peer.close();
      if (!(error instanceof ClosedError)) throw error;
      // As over a Unix socket: nothing listening is unavailable, never a missing object.
      throw new StoreUnavailableError(
        `Cannot connect to ${peer.url}: no server answers: ${error.message}`,
        { cause: error },
      );
    }
    return peer;
  }

  /**
   * Makes a peer without contacting the server; see {@link HttpPeer.connect}.
   *
   * @param url The server's base URL, `http://` or `https://`.
   * @param options The token.
   * @throws {InvalidArgumentError} For a URL of another scheme.
   */
  constructor(url: string | URL, options: HttpPeerOptions = {}) {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new InvalidArgumentError(`Invalid URL: ${parsed.href}: expected http:// or https://`);
    }
    this.#base = `${parsed.origin}${parsed.pathname.replace(/\/+$/, "")}`;
    this.#authorization = options.token === undefined ? undefined : `Bearer ${options.token}`;
    this.#client = Deno.createHttpClient({});
  }

  /** The server's base URL. */
  get url(): string {
    return this.#base;
  }

  async acquire(
    objectId: string | undefined,
    access: Access,
    options: AcquireOptions = {},
  ): Promise<Acquired> {
    if (objectId !== undefined) validateObjectId(objectId);
    if (options.memfds !== undefined) {
      throw new UnsupportedError("Cannot hand over memfds: this peer is behind HTTP");
    }
    const body: AcquireBody = {
      access,
      ...(objectId === undefined ? {} : { objectId }),
      ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
      ...(options.objectTtl === undefined ? {} : { objectTtl: options.objectTtl }),
      ...(options.size === undefined ? {} : { size: options.size }),
      ...(options.meta === undefined ? {} : { meta: options.meta }),
      ...(options.local === true ? { local: true } : {}),
    };
    const { lease, object } = await this.#json<{ lease: Lease; object: ObjectInfo }>(
      "POST",
      `${API_PREFIX}/leases`,
      body,
    );
    this.#hold(lease, options.ttl === undefined);
    const blobs = object.blobSizes.map((size, index) =>
      new HttpBlob(
        size,
        (offset, target) => this.#readBlob(lease.id, index, offset, target),
        (offset, bytes) => this.#writeBlob(lease.id, index, offset, bytes),
      )
    );
    return { lease, object, blobs };
  }

  seal(leaseId: string): Promise<ObjectInfo> {
    return this.#json("POST", this.#leasePath(leaseId, "seal"));
  }

  async discard(leaseId: string): Promise<void> {
    await this.#send("POST", this.#leasePath(leaseId, "discard"));
    this.#drop(leaseId);
  }

  async release(leaseId: string): Promise<void> {
    await this.#send("DELETE", this.#leasePath(leaseId));
    this.#drop(leaseId);
  }

  renew(leaseId: string, ttl?: number): Promise<Lease> {
    const body: RenewBody = ttl === undefined ? {} : { ttl };
    return this.#json("POST", this.#leasePath(leaseId, "renew"), body);
  }

  /**
   * The bytes of an object in one streamed `GET /v1/objects/:id`: a daemon
   * fetching it from another sends each piece once it has verified.
   */
  async readArriving(objectId: string): Promise<ArrivingObject> {
    validateObjectId(objectId);
    return arrivingOf(objectId, await this.#fetch("GET", objectPath(objectId), {}));
  }

  stat(objectId: string): Promise<ObjectInfo> {
    validateObjectId(objectId);
    return this.#json("GET", `${objectPath(objectId)}/info`);
  }

  /** Every object, pulled a page at a time. */
  list(): Promise<ObjectInfo[]> {
    return listInPages(this);
  }

  /** A page of the list (`GET /objects?limit=&after=`). */
  async listPage(options: ListPageOptions = {}): Promise<ListPage> {
    const { limit = DEFAULT_PAGE } = options;
    listPageRequest(options, 10); // Its stage the server checks.
    const query = new URLSearchParams({ limit: String(limit) });
    if (options.after !== undefined) query.set("after", options.after);
    const reply = await this.#json<ListPage | ObjectInfo[]>(
      "GET",
      `${API_PREFIX}/objects?${query}`,
    );
    // A server from before pages answers the whole list.
    return Array.isArray(reply) ? { objects: reply } : reply;
  }

  async has(objectId: string): Promise<boolean> {
    try {
      await this.stat(objectId);
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  stats(): Promise<PeerStats> {
    return this.#json("GET", `${API_PREFIX}/stats`);
  }

  /**
   * The status of the daemon behind the server.
   *
   * @throws {NotFoundError} From a server that is not a daemon (no `/v1/status`).
   */
  status(): Promise<DaemonStatus> {
    return this.#json("GET", `${API_PREFIX}/status`);
  }

  /**
   * The server's `/metrics`, by name without the `packice_` prefix (labels
   * kept, as in `http_requests_total{route="…",status="200"}`): the peer's
   * own metrics, and what the server counts.
   */
  async metrics(): Promise<Record<string, number>> {
    const response = await this.#fetch("GET", "/metrics", {});
    const figures: Record<string, number> = {};
    for (const line of (await response.text()).split("\n")) {
      // Label values may hold spaces; the value is what follows the last one.
      const match = /^packice_(.+) (\S+)$/.exec(line);
      if (match !== null) figures[match[1]!] = Number(match[2]);
    }
    return figures;
  }

  /**
   * Creates, fills and seals an object in one request: `PUT /v1/objects/:id`,
   * or `POST /v1/objects` for a fresh id. {@link Client.put} uses it.
   */
  putObject(
    chunks: readonly Uint8Array[],
    size: number,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    return chunks.length === 1 && size <= WHOLE_BODY
      ? this.#upload(chunks[0] as Uint8Array<ArrayBuffer>, {}, options)
      : this.putStream(chunks, size, options);
  }

  /**
   * Creates, fills and seals an object in one request whose body is
   * streamed from `chunks` as they come, with `Packice-Size`: only a chunk
   * at a time is held. {@link Client.put} uses it for long streams.
   */
  putStream(chunks: Iterable<Uint8Array>, size: number, options: PutOptions): Promise<ObjectInfo> {
    return this.#upload(
      ReadableStream.from(slices(chunks)),
      { [Header.SIZE]: String(size) },
      options,
    );
  }

  async #upload(
    body: BodyInit,
    headers: Record<string, string>,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    // Checked here: a header over the server's limit is refused before its handler sees it.
    if (options.meta !== undefined) headers[Header.META] = headerJson(validateMeta(options.meta));
    if (options.ttl !== undefined) headers[Header.TTL] = String(options.ttl);
    const path = options.id === undefined
      ? `${API_PREFIX}/objects`
      : objectPath(validateObjectId(options.id));
    const response = await this.#fetch(options.id === undefined ? "POST" : "PUT", path, {
      body,
      headers,
    });
    return await response.json();
  }

  /** Releases the leases still held and closes the connections. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const ids = [...this.#held.keys()];
      for (const id of ids) this.#drop(id);
      await Promise.all(ids.map(async (id) => {
        const response = await this.#request("DELETE", this.#leasePath(id), {}).catch(() => {});
        await response?.body?.cancel();
      }));
      this.#client.close();
    })();
    return this.#closing;
  }

  /** Closes the peer, as {@link HttpPeer.close} does. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A ranged GET of a blob under a lease, into `target`, as its body arrives. */
  async #readBlob(leaseId: string, index: number, offset: number, target: Uint8Array) {
    const length = target.length;
    const response = await this.#fetch("GET", this.#leasePath(leaseId, "blobs", index), {
      headers: { range: `bytes=${offset}-${offset + length - 1}` },
    });
    let at = 0;
    for await (const chunk of response.body!) {
      if (at + chunk.length > length) {
        throw new ProtocolError(`Response longer than the ${length} bytes asked for`);
      }
      target.set(chunk, at);
      at += chunk.length;
    }
    if (at !== length) throw new ProtocolError(`Response ended after ${at} of ${length} bytes`);
  }

  /** A PATCH of bytes into a blob under a lease. */
  async #writeBlob(leaseId: string, index: number, offset: number, bytes: Uint8Array) {
    const path = `${this.#leasePath(leaseId, "blobs", index)}?offset=${offset}`;
    if (bytes.length <= WHOLE_BODY) return await this.#send("PATCH", path, bytes);
    const response = await this.#fetch("PATCH", path, {
      body: ReadableStream.from(slices([bytes])),
      headers: { [Header.SIZE]: String(bytes.length) },
    });
    await response.body?.cancel();
  }

  /** Tracks a lease, renewing it at a third of its TTL when `keepAlive`. */
  #hold(lease: Lease, keepAlive: boolean): void {
    let timer: ReturnType<typeof setInterval> | undefined;
    if (keepAlive && lease.ttl !== undefined) {
      const renewing = setInterval(() => {
        this.renew(lease.id).catch((error) => {
          // A lease that ended stops being renewed; a network failure is retried next time.
          if (!(error instanceof ClosedError) || this.#closing !== undefined) this.#drop(lease.id);
        });
      }, Math.max(lease.ttl / 3, 10));
      Deno.unrefTimer(renewing);
      timer = renewing;
    }
    this.#held.set(lease.id, timer);
  }

  #drop(leaseId: string): void {
    clearInterval(this.#held.get(leaseId));
    this.#held.delete(leaseId);
  }

  #leasePath(leaseId: string, ...rest: Array<string | number>): string {
    if (leaseId === "" || leaseId === "." || leaseId === "..") {
      throw new UnknownLeaseError(`Unknown lease: ${leaseId}`);
    }
    return leasePath(leaseId, ...rest);
  }

  async #json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init = body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "content-type": "application/json" } };
    const response = await this.#fetch(method, path, init);
    return await response.json() as T;
  }

  async #send(method: string, path: string, body?: Uint8Array): Promise<void> {
    const response = await this.#fetch(
      method,
      path,
      body === undefined ? {} : { body: body as Uint8Array<ArrayBuffer> },
    );
    await response.body?.cancel();
  }

  /**
   * Reads a URL through the daemon, `GET /v1/fetch`: the origin's response
   * as stored, its body streamed from the object. Headers for the origin go
   * as `Packice-Origin-<name>`, beside this peer's own token; `answer`'s
   * (`Range`, `If-Range`) go as they are, for the daemon's answer.
   *
   * @throws {PackiceError} The daemon's own error (the origin's statuses are answered as they are).
   */
  async fetchThrough(request: OriginRequest, answer?: Headers): Promise<Response> {
    const query = new URLSearchParams({ url: request.url });
    if (request.cache !== undefined) query.set("cache", request.cache);
    const headers: Record<string, string> = Object.fromEntries(answer ?? []);
    for (const [name, value] of request.headers) {
      const key = `packice-origin-${name.toLowerCase()}`;
      headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
    }
    const response = await this.#fetchRaw(`${API_PREFIX}/fetch?${query}`, headers);
    if (response.ok || response.headers.has("packice-object")) return response;
    throw await errorOf(response);
  }

  async #fetchRaw(path: string, extra: Record<string, string>): Promise<Response> {
    if (this.#closing !== undefined) throw new ClosedError("Peer is closed");
    const headers = { ...extra };
    if (this.#authorization !== undefined) headers.authorization = this.#authorization;
    try {
      return await fetch(`${this.#base}${path}`, { headers, client: this.#client });
    } catch (error) {
      throw new ClosedError(`Cannot reach peer at ${this.#base}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** One request of an open peer; a failed response becomes the error a local peer would throw. */
  #fetch(
    method: string,
    path: string,
    init: { body?: BodyInit; headers?: Record<string, string> },
  ): Promise<Response> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError("Peer is closed"));
    return this.#request(method, path, init);
  }

  async #request(
    method: string,
    path: string,
    init: { body?: BodyInit; headers?: Record<string, string> },
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.#authorization !== undefined) headers.authorization = this.#authorization;
    let response: Response;
    try {
      response = await fetch(`${this.#base}${path}`, {
        method,
        headers,
        client: this.#client,
        ...(init.body === undefined ? {} : { body: init.body }),
      });
    } catch (error) {
      throw new ClosedError(`Cannot reach peer at ${this.#base}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }
}

/**
 * The largest body sent as one array. Deno's `fetch` copies an array body
 * whole, three times over (a put of 512 MiB raised the client's memory by
 * 1.5 GiB), and a stream's chunks one at a time.
 */
const WHOLE_BODY = 1 << 20;

/** `chunks` cut into slices of at most {@link WHOLE_BODY} bytes, without copies. */
function* slices(chunks: Iterable<Uint8Array>): Generator<Uint8Array<ArrayBuffer>> {
  for (const chunk of chunks) {
    for (let at = 0; at < chunk.length; at += WHOLE_BODY) {
      yield chunk.subarray(at, at + WHOLE_BODY) as Uint8Array<ArrayBuffer>;
    }
  }
}

/** A blob of a remote object: bytes move over HTTP under the lease. */
class HttpBlob implements Blob {
  readonly size: number;
  readonly #read: (offset: number, target: Uint8Array) => Promise<void>;
  readonly #write: (offset: number, bytes: Uint8Array) => Promise<void>;

  constructor(
    size: number,
    read: (offset: number, target: Uint8Array) => Promise<void>,
    write: (offset: number, bytes: Uint8Array) => Promise<void>,
  ) {
    this.size = size;
    this.#read = read;
    this.#write = write;
  }

  openView(): undefined {
    return undefined;
  }

  closeView(_view: Uint8Array): void {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange("read", offset, length, this.size, "the blob");
    const bytes = new Uint8Array(length);
    if (length > 0) await this.#read(offset, bytes);
    return bytes;
  }

  /** One ranged GET of `target.length` bytes from `offset`, copied into `target` as they come. */
  async readInto(offset: number, target: Uint8Array): Promise<void> {
    checkRange("read", offset, target.length, this.size, "the blob");
    if (target.length > 0) await this.#read(offset, target);
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    if (!(bytes instanceof Uint8Array)) {
      throw new InvalidArgumentError("Invalid bytes: expected a Uint8Array");
    }
    checkRange("write", offset, bytes.length, this.size, "the blob");
    await this.#write(offset, bytes);
  }
}
