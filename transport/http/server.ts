/**
 * The HTTP server: one idea, each route of `protocol.ts` turned into calls on
 * a `Peer`. Routing is `router.ts`, bodies `body.ts`, authentication
 * `auth.ts`, leases held for clients `lease_table.ts`, uploads in progress
 * `upload_gate.ts`, counters `metrics.ts`.
 *
 * @module
 */
import { BasePeer } from "../../core/base_peer.ts";
import { type Clock, systemClock } from "../../core/clock.ts";
import {
  ErrorCode,
  InvalidArgumentError,
  NotFoundError,
  NotSealedError,
  type PackiceError,
  ProtocolError,
  StoreUnavailableError,
} from "../../core/errors.ts";
import { Access } from "../../core/lease.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { checkRange } from "../../core/range.ts";
import { type Acquired, offersArrivingRead, type Peer } from "../../core/peer.ts";
import {
  acquireRequest,
  deleteRequest,
  discardRequest,
  getRequest,
  putRequest,
  releaseRequest,
  renewRequest,
  sealRequest,
  statRequest,
} from "../../core/requests.ts";
import { MAX_META_BYTES, validateSize, validateTtl } from "../../core/validate.ts";
import { isLoopback, urlHost } from "./address.ts";
import { BearerAuth } from "./auth.ts";
import { blobStream, readJson, receive, spoolBody, uploadLength } from "./body.ts";
import { MemfdSpool, storeSpool } from "../../native/spool.ts";
import { loadNative } from "../../native/load.ts";
import { type ByteRange, noneMatch, parseRange } from "./conditional.ts";
import { computeDigest } from "../../backends/digest.ts";
import { describeError, errorResponse, metaTooLarge } from "./errors.ts";
import type { HttpRequestEntry } from "./request_log.ts";
import type { DaemonStatus } from "../../core/status.ts";
import { LeaseTable } from "./lease_table.ts";
import { RequestMetrics } from "./metrics.ts";
import { API_PREFIX, CONTENT_TYPE_KEY, Header, headerJson, objectPath } from "./protocol.ts";
import { type RouteContext, type RouteHandler, Router } from "./router.ts";
import { type PartialHolder, UploadGate } from "./upload_gate.ts";

/** The default TTL of leases held by HTTP clients: 30 seconds. */
export const DEFAULT_LEASE_TTL = 30_000;
/** The default largest upload in one request: 4 GiB. */
export const DEFAULT_MAX_BODY_SIZE = 4 * 1024 ** 3;

/** Options of {@link serveHttp}. */
export interface HttpServerOptions {
  /** The address to listen on. Default `127.0.0.1`; any other than loopback needs a `token`. */
  readonly hostname?: string;
  /** The TCP port; 0 picks a free one. Default 7070. */
  readonly port?: number;
  /** The bearer token every request but `/healthz` must carry. */
  readonly token?: string;
  /**
   * TTL in milliseconds of leases that HTTP clients take without one, and of
   * the lease a one-request upload holds while its bytes arrive. Default
   * {@link DEFAULT_LEASE_TTL}.
   */
  readonly leaseTtl?: number;
  /** The largest upload, in bytes, one request may carry. Default {@link DEFAULT_MAX_BODY_SIZE}. */
  readonly maxBodySize?: number;
  /** The largest metadata, in bytes of JSON, a request may carry. Default 64 KiB. */
  readonly maxMetaSize?: number;
  /** The clock the peer judges lease expiry by. Default: the peer's own, else the system clock. */
  readonly clock?: Clock;
  /** Called with each unexpected failure (500 INTERNAL), such as to log it. Default: `console.error`. */
  readonly onError?: (error: unknown) => void;
  /** Bytes a second of object bodies sent (uploads to other daemons). Default: unlimited. */
  readonly maxUploadRate?: number | undefined;
  /**
   * Object bodies sent at once. Beyond it, another daemon's request
   * (`?local=1`) is answered 503 with `Retry-After` (it asks another source
   * meanwhile); a client's waits in line for a slot, holding no lease.
   * Default: unlimited.
   */
  readonly maxUploads?: number | undefined;
  /**
   * Milliseconds after a range was sent to another daemon (`?local=1`)
   * during which it is not sent again (nor while it is sent): a repeat is
   * answered 503, so that receivers of a broadcast relay it to each other
   * (see `repeat_guard.ts`). 0 turns it off. Default 0; the daemon sets 400 with `--max-uploads`.
   */
  readonly repeatWindowMs?: number | undefined;
  /** Called once per request when its response is ready, such as to log it. */
  readonly onRequest?: (entry: HttpRequestEntry) => void;
  /** Answers `GET /v1/status`; without it that route is 404. */
  readonly status?: () => Promise<DaemonStatus>;
  /** More figures for `/metrics`, by name as `Peer.metrics()` gives them, such as a Unix-socket server's. */
  readonly metrics?: () => Readonly<Record<string, number>>;
  /** More routes, such as the cluster's under `/v1/cluster`; they need the token as every other. */
  readonly routes?: readonly HttpRoute[];
  /** More Prometheus text for `/metrics`, such as the cluster's counts. */
  readonly metricsText?: () => string;
}

/** A route added to the server: method, `:name` pattern and handler. */
export interface HttpRoute {
  /** The method, upper case. */
  readonly method: string;
  /** The path, such as `/v1/cluster/ping`. */
  readonly pattern: string;
  /** What answers it. */
  readonly handler: RouteHandler;
}

/** JSON bodies of control requests may hold metadata and this much more. */
const JSON_OVERHEAD = 4096;

/**
 * Serves a peer over HTTP/1.1 with `Deno.serve`: JSON control routes under
 * `/v1`, object bytes streamed both ways, `/healthz` and `/metrics`. See
 * `transport/http/protocol.ts` for the routes.
 *
 * @param peer The peer to serve; the server calls its API only and does not close it.
 * @param options Address, token, lease TTL and limits.
 * @returns The running server.
 * @throws {InvalidArgumentError} For a non-loopback address without a token, or a bad option.
 *
 * @example Serve a memory peer on a free port
 * ```ts ignore
 * import { connect, MemoryPeer, serveHttp } from "@packice/packice";
 * await using peer = new MemoryPeer();
 * await using server = serveHttp(peer, { port: 0 });
 * await using client = await connect(server.url);
 * const id = await client.put("hello");
 * console.log((await client.stat(id)).size); // 5
 * ```
 */
export function serveHttp(peer: Peer, options: HttpServerOptions = {}): HttpServer {
  return new HttpServer(peer, options);
}

/**
 * A running HTTP server of a peer. Close it, or use `await using`, to stop
 * it and release the leases its clients still hold.
 */
export class HttpServer implements AsyncDisposable {
  /** The base URL clients connect to, such as `http://127.0.0.1:7070`. */
  readonly url: string;
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  readonly #peer: Peer;
  readonly #auth: BearerAuth | undefined;
  readonly #leaseTtl: number;
  readonly #maxBodySize: number;
  readonly #maxMetaSize: number;
  readonly #onError: (error: unknown) => void;
  readonly #uploads: UploadGate;
  readonly #onRequest: ((entry: HttpRequestEntry) => void) | undefined;
  readonly #status: (() => Promise<DaemonStatus>) | undefined;
  readonly #metricsText: (() => string) | undefined;
  readonly #leases: LeaseTable;
  readonly #metrics = new RequestMetrics();
  readonly #router = new Router();
  readonly #abort = new AbortController();
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #pruner: ReturnType<typeof setInterval>;
  readonly #moreMetrics: (() => Readonly<Record<string, number>>) | undefined;
  #closing: Promise<void> | undefined;

  /** Use {@link serveHttp}. */
  constructor(peer: Peer, options: HttpServerOptions) {
    const hostname = options.hostname ?? "127.0.0.1";
    if (options.token !== undefined && options.token.length === 0) {
      throw new InvalidArgumentError("Invalid token: empty");
    }
    if (options.token === undefined && !isLoopback(hostname)) {
      throw new InvalidArgumentError(
        `Refusing to serve HTTP on ${hostname} without a token: set --token or PACKICE_TOKEN, or listen on 127.0.0.1`,
      );
    }
    this.#peer = peer;
    this.#auth = options.token === undefined ? undefined : new BearerAuth(options.token);
    this.#leaseTtl = validateTtl(options.leaseTtl) ?? DEFAULT_LEASE_TTL;
    this.#maxBodySize = validateSize(options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE, "maxBodySize");
    this.#maxMetaSize = validateSize(options.maxMetaSize ?? MAX_META_BYTES, "maxMetaSize");
    this.#onError = options.onError ?? ((error) => console.error(error));
    this.#uploads = new UploadGate(options);
    this.#onRequest = options.onRequest;
    this.#status = options.status;
    this.#moreMetrics = options.metrics;
    this.#leases = new LeaseTable(
      options.clock ?? (peer instanceof BasePeer ? peer.clock : systemClock),
    );
    this.#metricsText = options.metricsText;
    this.#routes();
    for (const route of options.routes ?? []) {
      this.#router.add(route.method, route.pattern, route.handler);
    }
    const port = options.port ?? 7070;
    try {
      this.#server = Deno.serve({
        hostname,
        port,
        signal: this.#abort.signal,
        onListen: () => {},
      }, (request, info) => this.#handle(request, info));
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
      throw new Deno.errors.AddrInUse(
        `Cannot serve HTTP on ${
          urlHost(hostname, port)
        }: address in use by another process: choose another port, such as --http ${
          urlHost(hostname, 0)
        } for a free one`,
        { cause: error },
      );
    }
    this.addr = this.#server.addr;
    this.url = `http://${urlHost(this.addr.hostname, this.addr.port)}`;
    const pruner = setInterval(() => this.#leases.prune(), Math.min(this.#leaseTtl, 60_000));
    Deno.unrefTimer(pruner);
    this.#pruner = pruner;
  }

  /** Settles when the server has stopped. */
  get finished(): Promise<void> {
    return this.#server.finished;
  }

  /**
   * Stops accepting requests, waits for those under way, and releases the
   * leases HTTP clients still hold. Idempotent; the peer stays open.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#pruner);
      this.#abort.abort();
      await this.#server.finished;
      const ids = this.#leases.ids;
      for (const id of ids) this.#leases.delete(id);
      await Promise.all(ids.map((id) => this.#peer.release(id).catch(() => {})));
    })();
    return this.#closing;
  }

  /** Closes the server, as {@link HttpServer.close} does. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(request: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
    const started = performance.now();
    let route = "unmatched";
    let response: Response;
    let refused: PackiceError | undefined;
    try {
      const url = new URL(request.url);
      const match = this.#router.match(request.method, url.pathname);
      route = match.route;
      if (route !== "GET /healthz") this.#auth?.check(request.headers.get("authorization"));
      response = await match.handler({ request, url, params: match.params, info });
    } catch (thrown) {
      const { status, error, headers } = describeError(thrown);
      if (error.code === ErrorCode.INTERNAL) this.#onError(thrown);
      response = errorResponse(status, error, headers, request.method === "HEAD");
      refused = error;
    }
    const seconds = (performance.now() - started) / 1000;
    this.#metrics.observe(route, response.status, seconds);
    this.#onRequest?.({
      method: request.method,
      path: new URL(request.url).pathname,
      route,
      status: response.status,
      ms: seconds * 1000,
      remote: remoteOf(info.remoteAddr),
      ...(refused === undefined ? {} : { error: refused.toJSON() }),
    });
    return response;
  }

  #routes(): void {
    const objects = `${API_PREFIX}/objects`;
    const leases = `${API_PREFIX}/leases`;
    const peer = this.#peer;
    this.#router
      .add("GET", "/healthz", () => Response.json({ status: "ok" }))
      .add(
        "GET",
        "/metrics",
        async () =>
          new Response(
            this.#metrics.render(await peer.stats(), {
              ...await peer.metrics?.(),
              ...this.#moreMetrics?.(),
            }) + (this.#metricsText?.() ?? ""),
            {
              headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
            },
          ),
      )
      .add("GET", `${API_PREFIX}/stats`, async () => Response.json(await peer.stats()))
      .add("GET", `${API_PREFIX}/status`, async () => {
        if (this.#status === undefined) {
          throw new NotFoundError("No status: this server is not a daemon");
        }
        return Response.json(await this.#status());
      })
      .add("GET", objects, async () => Response.json(await peer.list()))
      .add("POST", objects, (context) => this.#upload(context, undefined))
      .add("PUT", `${objects}/:id`, (context) => this.#upload(context, context.params.id))
      .add("GET", `${objects}/:id`, (context) => this.#download(context, false))
      .add("HEAD", `${objects}/:id`, (context) => this.#download(context, true))
      .add("DELETE", `${objects}/:id`, async ({ params }) => {
        const { lease } = await peer.acquire(deleteRequest(params.id), Access.WRITE);
        await peer.discard(lease.id);
        return new Response(null, { status: 204 });
      })
      .add(
        "GET",
        `${objects}/:id/info`,
        async ({ params }) => Response.json(await peer.stat(statRequest(params.id))),
      )
      .add("POST", leases, (context) => this.#acquire(context))
      .add("DELETE", `${leases}/:lease`, async ({ params }) => {
        const leaseId = releaseRequest(params.lease);
        await peer.release(leaseId);
        this.#leases.delete(leaseId);
        return new Response(null, { status: 204 });
      })
      .add(
        "POST",
        `${leases}/:lease/seal`,
        async ({ params }) => Response.json(await peer.seal(sealRequest(params.lease))),
      )
      .add("POST", `${leases}/:lease/discard`, async ({ params }) => {
        const leaseId = discardRequest(params.lease);
        await peer.discard(leaseId);
        this.#leases.delete(leaseId);
        return new Response(null, { status: 204 });
      })
      .add("POST", `${leases}/:lease/renew`, async ({ request, params }) => {
        const body = asObject(await readJson(request, JSON_OVERHEAD));
        const { leaseId, ttl } = renewRequest({ ...body, leaseId: params.lease });
        const lease = await peer.renew(leaseId, ttl);
        this.#leases.renewed(lease);
        return Response.json(lease);
      })
      .add("GET", `${leases}/:lease/blobs/:index`, (context) => this.#readBlob(context))
      .add("PATCH", `${leases}/:lease/blobs/:index`, (context) => this.#writeBlob(context));
  }

  /** POST /v1/leases: every lease an HTTP client holds has a TTL. */
  async #acquire({ request }: RouteContext): Promise<Response> {
    const body = asObject(await readJson(request, this.#maxMetaSize + JSON_OVERHEAD));
    const { objectId, access, ttl, objectTtl, size, meta, local } = acquireRequest(body);
    if (meta !== undefined) this.#checkMetaSize(encoder.encode(JSON.stringify(meta)).length);
    const acquired = await this.#peer.acquire(objectId, access, {
      ttl: ttl ?? this.#leaseTtl,
      ...(objectTtl === undefined ? {} : { objectTtl }),
      ...(size === undefined ? {} : { size }),
      ...(meta === undefined ? {} : { meta }),
      ...(local === true ? { local } : {}),
    });
    this.#leases.add(acquired);
    return Response.json({ lease: acquired.lease, object: acquired.object }, { status: 201 });
  }

  /**
   * PUT /v1/objects/:id and POST /v1/objects: creates, fills and seals an
   * object in one request. A body cut off or of the wrong length discards it.
   * A body of no declared length (chunked) is gathered in a memfd first,
   * where the native library loads; else it is refused with 411.
   */
  async #upload({ request, url }: RouteContext, id: string | undefined): Promise<Response> {
    const native = loadNative();
    const size = uploadLength(request, this.#maxBodySize, native !== undefined);
    // The object's TTL, from `?ttl=` or the header; the lease's is the server's own.
    const ttlText = url.searchParams.get("ttl") ?? request.headers.get(Header.TTL);
    const put = putRequest({
      id,
      meta: this.#metaOf(request),
      ttl: ttlText === null ? undefined : ttlNumber(ttlText),
    });
    const { meta } = put;
    const ttl = this.#leaseTtl;
    const fields = {
      ttl,
      ...(put.ttl === undefined ? {} : { objectTtl: put.ttl }),
      ...(meta === undefined ? {} : { meta }),
    };
    const peer = this.#peer;
    if (size === undefined) {
      // A body of unknown length goes into a memfd first, then becomes the object.
      using spool = new MemfdSpool(native!);
      await spoolBody(request.body, spool, this.#maxBodySize);
      const info = await storeSpool(peer, spool, put.id, fields);
      return Response.json(info, { status: 201, headers: { location: objectPath(info.id) } });
    }
    const { lease, blobs } = await peer.acquire(put.id, Access.CREATE, { size, ...fields });
    let info: ObjectInfo;
    try {
      const blob = blobs[0]!;
      let renewed = performance.now();
      await receive(request.body, size, (chunk, at) => blob.write(at, chunk), async () => {
        if (performance.now() - renewed < ttl / 3) return;
        renewed = performance.now();
        await peer.renew(lease.id);
      });
      info = await peer.seal(lease.id);
    } catch (error) {
      await peer.discard(lease.id).catch(() => {});
      throw error;
    }
    await peer.release(lease.id);
    return Response.json(info, { status: 201, headers: { location: objectPath(info.id) } });
  }

  /** GET and HEAD /v1/objects/:id: the bytes, with entity tag, range and type. */
  async #download(
    { request, params, info, url }: RouteContext,
    head: boolean,
  ): Promise<Response> {
    const peer = this.#peer;
    const id = getRequest(params.id);
    const ifNoneMatch = request.headers.get("if-none-match");
    if (head || ifNoneMatch !== null) {
      // Answered from the directory when the digest is known: no lease needed.
      const known = await peer.stat(id);
      if (known.state !== "SEALED") {
        throw new NotSealedError(`Cannot read object ${id}: not sealed`);
      }
      if (known.digest !== undefined) {
        if (noneMatch(ifNoneMatch, etagOf(known.digest))) return notModified(known.digest);
        if (head) return new Response(null, { headers: objectHeaders(known, known.digest) });
      }
    }
    // `?local=1`: this host's copy only, as daemons ask each other.
    const local = url.searchParams.get("local") === "1";
    const free = await this.#uploads.enter(id, local, request.headers.get("range"));
    if (!local && !head && ifNoneMatch === null && offersArrivingRead(peer)) {
      const arriving = request.headers.has("range")
        ? undefined
        : await peer.readArriving(id).catch((error) => {
          free?.();
          throw error;
        });
      if (arriving !== undefined) {
        // Each chunk goes as soon as its piece has verified.
        if (free !== undefined) info.completed.then(free, free);
        const { object, body } = arriving;
        const headers = { ...objectHeaders(object, object.digest!), [Header.STATE]: "CREATING" };
        return new Response(this.#uploads.limit(body), { headers });
      }
    }
    let acquired: Acquired;
    try {
      acquired = await peer.acquire(id, Access.READ, local ? { local } : {});
    } catch (error) {
      const partial =
        local && (error instanceof NotFoundError || error instanceof StoreUnavailableError)
          ? (peer as Peer & PartialHolder).partial?.(id)
          : undefined;
      if (partial === undefined || !request.headers.has("range")) {
        free?.();
        throw error;
      }
      let response: Response;
      try {
        response = this.#uploads.partialRange(request, id, partial);
      } catch (refused) {
        free?.();
        throw refused;
      }
      if (free !== undefined) info.completed.then(free, free);
      return response;
    }
    let sent = false;
    try {
      const object = acquired.object;
      const digest = object.digest ?? await this.#digest(acquired);
      if (noneMatch(ifNoneMatch, etagOf(digest))) return notModified(digest);
      const headers = objectHeaders(object, digest);
      if (head) return new Response(null, { headers });
      const range = parseRange(request.headers.get("range"), object.size);
      const status = range === undefined ? 200 : 206;
      const bytes: ByteRange = range ?? { start: 0, end: object.size };
      if (range !== undefined) {
        headers["content-range"] = `bytes ${range.start}-${range.end - 1}/${object.size}`;
        headers["content-length"] = String(range.end - range.start);
      }
      if (bytes.end === bytes.start) return new Response(null, { status, headers });
      const stream = await blobStream(acquired.blobs, bytes, true);
      const body = this.#uploads.limit(stream);
      // Views of the blobs' memory are sent as they are: the lease holds
      // that memory until the response is out.
      const release = () => {
        free?.();
        return peer.release(acquired.lease.id).catch(() => {});
      };
      info.completed.then(release, release);
      sent = true;
      return new Response(body, { status, headers });
    } finally {
      if (!sent) {
        free?.();
        await peer.release(acquired.lease.id).catch(() => {});
      }
    }
  }

  /** The digest of an object read under a lease, remembered by peers that can. */
  async #digest(acquired: Acquired): Promise<string> {
    const digest = await computeDigest(acquired.blobs);
    await this.#peer.recordDigest?.(acquired.lease.id, digest).catch(this.#onError);
    return digest;
  }

  /** GET /v1/leases/:lease/blobs/:index: copies, as the client's lease may end mid-response. */
  async #readBlob({ request, params }: RouteContext): Promise<Response> {
    const blob = this.#leases.blob(params.lease!, params.index!);
    const range = parseRange(request.headers.get("range"), blob.size);
    const bytes: ByteRange = range ?? { start: 0, end: blob.size };
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "content-length": String(bytes.end - bytes.start),
    };
    if (range !== undefined) {
      headers["content-range"] = `bytes ${range.start}-${range.end - 1}/${blob.size}`;
    }
    const status = range === undefined ? 200 : 206;
    if (bytes.end === bytes.start) return new Response(null, { status, headers });
    return new Response(await blobStream([blob], bytes, false), { status, headers });
  }

  /** PATCH /v1/leases/:lease/blobs/:index?offset=N: writes the body into the blob. */
  async #writeBlob({ request, url, params }: RouteContext): Promise<Response> {
    const blob = this.#leases.blob(params.lease!, params.index!);
    const offsetText = url.searchParams.get("offset") ?? "0";
    const offset = validateSize(/^\d+$/.test(offsetText) ? Number(offsetText) : -1, "offset");
    const length = uploadLength(request, this.#maxBodySize);
    checkRange("write", offset, length, blob.size, "the blob");
    // An empty write checks the lease allows writing before any byte is read.
    await blob.write(offset, new Uint8Array(0));
    await receive(request.body, length, (chunk, at) => blob.write(offset + at, chunk));
    return new Response(null, { status: 204 });
  }

  #checkMetaSize(bytes: number): void {
    if (bytes > this.#maxMetaSize) {
      throw metaTooLarge(`Metadata too large: ${bytes} bytes, the limit is ${this.#maxMetaSize}`);
    }
  }

  /** The metadata of an upload, from its `Packice-Meta` header (ASCII: one byte a character). */
  #metaOf(request: Request): unknown {
    const text = request.headers.get(Header.META);
    if (text === null) return undefined;
    this.#checkMetaSize(text.length);
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new ProtocolError(`Malformed ${Header.META} header: ${(error as Error).message}`);
    }
  }
}

const encoder = new TextEncoder();

function asObject(value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ProtocolError("Malformed JSON body: expected an object");
  }
  return value as Record<string, unknown>;
}

function remoteOf(addr: Deno.Addr): string {
  return addr.transport === "tcp" || addr.transport === "udp"
    ? urlHost(addr.hostname, addr.port)
    : addr.transport;
}

/** A TTL header's number, of digits only; any other text is left for the check to refuse. */
function ttlNumber(text: string): number | string {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : text;
}

function etagOf(digest: string): string {
  return `"${digest}"`;
}

function notModified(digest: string): Response {
  return new Response(null, { status: 304, headers: { etag: etagOf(digest) } });
}

/**
 * Headers of an object's bytes; `Content-Type` from `meta["content-type"]`,
 * the whole metadata in `Packice-Meta` when there is any.
 */
function objectHeaders(object: ObjectInfo, digest: string): Record<string, string> {
  const type = object.meta[CONTENT_TYPE_KEY];
  const valid = typeof type === "string" && /^[\x20-\x7e]+$/.test(type);
  const headers: Record<string, string> = {
    "content-type": valid ? type : "application/octet-stream",
    "content-length": String(object.size),
    "accept-ranges": "bytes",
    etag: etagOf(digest),
  };
  for (const _ in object.meta) {
    headers[Header.META] = headerJson(object.meta);
    break;
  }
  return headers;
}
