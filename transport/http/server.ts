/**
 * The HTTP server: it listens, checks the token, routes each request of
 * `protocol.ts` to its handler and turns failures into error responses,
 * counted and logged. The handlers are `serve_objects.ts` and
 * `serve_leases.ts`, over what they share (`server_context.ts`); routing is
 * `router.ts`, bodies `body.ts`, authentication `auth.ts`, leases held for
 * clients `lease_table.ts`, uploads in progress `upload_gate.ts`, counters
 * `metrics.ts`.
 *
 * @module
 */
import { listObjects } from "./serve_list.ts";
import { BasePeer } from "../../core/base_peer.ts";
import { type Clock, systemClock } from "../../core/clock.ts";
import {
  ErrorCode,
  InvalidArgumentError,
  NativeUnavailableError,
  NotFoundError,
  type PackiceError,
} from "../../core/errors.ts";
import { offersRemovalEvents, type Peer } from "../../core/peer.ts";
import { loadNative } from "../../native/load.ts";
import type { DaemonStatus } from "../../core/status.ts";
import { MAX_META_BYTES, validateSize, validateTtl } from "../../core/validate.ts";
import { isLoopback, urlHost } from "./address.ts";
import { BearerAuth } from "./auth.ts";
import { describeError, errorResponse } from "./errors.ts";
import { LeaseTable } from "./lease_table.ts";
import { RequestMetrics } from "./metrics.ts";
import { NativeBucket } from "./native_bucket.ts";
import { NativeGet } from "./native_get.ts";
import { API_PREFIX } from "./protocol.ts";
import type { HttpRequestEntry } from "./request_log.ts";
import { type RouteHandler, Router } from "./router.ts";
import { deleteObject, download, objectInfo, upload } from "./serve_objects.ts";
import { acquire, discard, readBlob, release, renew, seal, writeBlob } from "./serve_leases.ts";
import type { ServerContext } from "./server_context.ts";
import { UploadGate } from "./upload_gate.ts";

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
  /**
   * A port of its own where the native library answers GET and HEAD of
   * sealed objects held in memfds with sendfile, handing every other request
   * to this server (see `native_get.ts`). Needs the native library and a
   * peer that reports removals (`RemovalEvents`). With `optional`, a
   * listener that cannot start (no native library, a peer without removal
   * events, an address it cannot take) is reported there and the server runs
   * without one; else the server does not start. Default: none.
   */
  readonly fastGet?: {
    readonly hostname?: string;
    readonly port: number;
    readonly optional?: (error: Error) => void;
  };
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
  /**
   * The base URL of its native GET listener, with `fastGet`: other daemons
   * are to ask for pieces there (it hands every request it does not answer
   * to this server, and sends the bodies this server gives it by ticket).
   */
  readonly fastUrl: string | undefined;
  readonly #peer: Peer;
  readonly #auth: BearerAuth | undefined;
  readonly #context: ServerContext;
  readonly #onRequest: ((entry: HttpRequestEntry) => void) | undefined;
  readonly #status: (() => Promise<DaemonStatus>) | undefined;
  readonly #metricsText: (() => string) | undefined;
  readonly #metrics = new RequestMetrics();
  readonly #router = new Router();
  readonly #abort = new AbortController();
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #pruner: ReturnType<typeof setInterval>;
  readonly #moreMetrics: (() => Readonly<Record<string, number>>) | undefined;
  /** The upload bucket shared with the native GET listener, with both. */
  readonly #bucket: NativeBucket | undefined;
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
    // Checked before listening: what is refused leaves nothing running.
    const optional = options.fastGet?.optional;
    let nativeGet: ReturnType<typeof nativeGetOf> | undefined;
    try {
      nativeGet = options.fastGet === undefined
        ? undefined
        : nativeGetOf(peer, options.fastGet, options);
    } catch (error) {
      if (optional === undefined) throw error;
      optional(error as Error);
    }
    this.#bucket = nativeGet?.bucket;
    this.#context = {
      peer,
      leaseTtl: validateTtl(options.leaseTtl) ?? DEFAULT_LEASE_TTL,
      maxBodySize: validateSize(options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE, "maxBodySize"),
      maxMetaSize: validateSize(options.maxMetaSize ?? MAX_META_BYTES, "maxMetaSize"),
      onError: options.onError ?? ((error) => console.error(error)),
      uploads: new UploadGate(options, this.#bucket),
      leases: new LeaseTable(
        options.clock ?? (peer instanceof BasePeer ? peer.clock : systemClock),
      ),
      nativeGet: undefined,
    };
    this.#onRequest = options.onRequest;
    this.#status = options.status;
    this.#moreMetrics = options.metrics;
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
      this.#bucket?.free();
      if (error instanceof Deno.errors.AddrNotAvailable) {
        throw new Deno.errors.AddrNotAvailable(
          `Cannot serve HTTP on ${
            urlHost(hostname, port)
          }: no network interface of this host has that address: give one it has (ip -brief address), or 127.0.0.1`,
          { cause: error },
        );
      }
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
    try {
      this.#context.nativeGet = nativeGet?.start(this.addr);
    } catch (error) {
      if (optional === undefined) {
        this.#abort.abort();
        this.#bucket?.free();
        throw error;
      }
      optional(error as Error);
    }
    this.fastUrl = this.#context.nativeGet?.url;
    const fast = this.#context.nativeGet;
    if (fast !== undefined) this.#context.uploads.sendingElsewhere(() => fast.counts().relayBodies);
    const { leases, leaseTtl } = this.#context;
    const pruner = setInterval(() => leases.prune(), Math.min(leaseTtl, 60_000));
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
      await this.#context.nativeGet?.close();
      this.#abort.abort();
      await this.#server.finished;
      // No body takes from it any more: the listener is stopped, the server finished.
      this.#bucket?.free();
      const { leases } = this.#context;
      const ids = leases.ids;
      for (const id of ids) leases.delete(id);
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
      response = await match.handler({
        request,
        url,
        params: match.params,
        info,
        uploads: this.#context.uploads,
        sendFile: (fd, size, range, headers) => {
          const nativeGet = this.#context.nativeGet;
          if (nativeGet === undefined || !nativeGet.handedOver(request)) return undefined;
          const ticket = nativeGet.ticket(fd, size, range, true, headers);
          return ticket && {
            response: new Response(null, { status: 206, headers: ticket.headers }),
            done: ticket.done,
          };
        },
      });
    } catch (thrown) {
      const { status, error, headers } = describeError(thrown);
      if (error.code === ErrorCode.INTERNAL) this.#context.onError(thrown);
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
    const server = this.#context;
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
              ...nativeGetMetrics(this.#context.nativeGet),
              ...uploadMetrics(this.#context.uploads),
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
      .add("GET", objects, (route) => listObjects(peer, route.url))
      .add("POST", objects, (route) => upload(server, route, undefined))
      .add("PUT", `${objects}/:id`, (route) => upload(server, route, route.params.id))
      .add("GET", `${objects}/:id`, (route) => download(server, route, false))
      .add("HEAD", `${objects}/:id`, (route) => download(server, route, true))
      .add("DELETE", `${objects}/:id`, (route) => deleteObject(server, route))
      .add("GET", `${objects}/:id/info`, (route) => objectInfo(server, route))
      .add("POST", leases, (route) => acquire(server, route))
      .add("DELETE", `${leases}/:lease`, (route) => release(server, route))
      .add("POST", `${leases}/:lease/seal`, (route) => seal(server, route))
      .add("POST", `${leases}/:lease/discard`, (route) => discard(server, route))
      .add("POST", `${leases}/:lease/renew`, (route) => renew(server, route))
      .add("GET", `${leases}/:lease/blobs/:index`, (route) => readBlob(server, route))
      .add("PATCH", `${leases}/:lease/blobs/:index`, (route) => writeBlob(server, route));
  }
}

/**
 * Checks that `fast` can be served, and gives what starts its native GET
 * listener once the Deno server listens at `upstream`, and the upload
 * bucket the two share (with `maxUploadRate`). With upload limits, the
 * listener sends bodies by ticket only, so that every GET passes the Deno
 * server's upload gate.
 */
function nativeGetOf(
  peer: Peer,
  fast: { readonly hostname?: string; readonly port: number },
  options: HttpServerOptions,
): { start: (upstream: Deno.NetAddr) => NativeGet; bucket: NativeBucket | undefined } {
  const token = options.token;
  const hostname = fast.hostname ?? "127.0.0.1";
  if (token === undefined && !isLoopback(hostname)) {
    throw new InvalidArgumentError(
      `Refusing to serve HTTP on ${hostname} without a token: set --token or PACKICE_TOKEN, or listen on 127.0.0.1`,
    );
  }
  const native = loadNative();
  if (native === undefined) {
    throw new NativeUnavailableError(
      "Cannot serve GET natively: the native library is not loaded: build it with deno task build:native",
    );
  }
  if (!offersRemovalEvents(peer)) {
    throw new InvalidArgumentError(
      "Cannot serve GET natively: the peer does not report removed objects: serve a memory peer",
    );
  }
  const tickets = options.maxUploadRate !== undefined || options.maxUploads !== undefined;
  const bucket = options.maxUploadRate === undefined
    ? undefined
    : new NativeBucket(native, options.maxUploadRate);
  return {
    start: (upstream) =>
      new NativeGet(native, peer, {
        hostname,
        port: fast.port,
        upstream,
        token,
        tickets,
        bucket,
        maxUploads: options.maxUploads,
      }),
    bucket,
  };
}

/** Bytes of object bodies sent under the upload rate, for `/metrics`. */
function uploadMetrics(uploads: UploadGate): Record<string, number> {
  const sent = uploads.sent;
  return sent === undefined ? {} : { http_upload_bytes_total: sent };
}

/** The native GET listener's counts for `/metrics`. */
function nativeGetMetrics(nativeGet: NativeGet | undefined): Record<string, number> {
  if (nativeGet === undefined) return {};
  const { served, relayed, bytes, refused, relayServed } = nativeGet.counts();
  return {
    http_fast_served_total: served,
    http_fast_relayed_total: relayed,
    http_fast_bytes_total: bytes,
    http_fast_offers_refused_total: refused,
    http_fast_relay_served_total: relayServed,
  };
}

function remoteOf(addr: Deno.Addr): string {
  return addr.transport === "tcp" || addr.transport === "udp"
    ? urlHost(addr.hostname, addr.port)
    : addr.transport;
}
