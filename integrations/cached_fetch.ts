import { connect } from "../client/connect.ts";
import type { Client } from "../client/client.ts";
import { rangeResponse } from "../client/range_response.ts";
import { offersOrigin } from "../transport/origin_fetch.ts";
import {
  isFresh,
  sameRepresentation,
  storable as storableResponse,
  validators,
} from "../p2p/origin/freshness.ts";
import type { PackiceCache } from "./cache.ts";
import { PackiceCacheStorage } from "./cache_storage.ts";

/** A function with the signature of `fetch`. */
export type FetchFunction = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** Options of {@link createCachedFetch}. */
export interface CachedFetchOptions {
  /** Where responses are kept; a function is called at the first request that needs the cache. */
  readonly cache: PackiceCache | Promise<PackiceCache> | (() => Promise<PackiceCache>);
  /**
   * What answers a miss: the network by default. A daemon's read-through
   * (one download per cluster) plugs in here.
   */
  readonly fetch?: FetchFunction;
  /**
   * A client of a daemon (Unix socket or HTTP): GET and HEAD requests then go
   * to the daemon's read-through (`client.fetch`), which keeps one object
   * per URL for the whole cluster and goes to the origin once per cluster,
   * with the same `init.cache` and revalidation rules; `cache` serves only
   * clients of a peer in this process.
   */
  readonly client?: Client | Promise<Client>;
}

/**
 * A drop-in `fetch` that answers GET requests from a {@link PackiceCache}
 * when it can and from the network otherwise, storing what it fetched.
 *
 * - `init.cache` is honoured: `default` serves a stored response while it is
 *   fresh (`Cache-Control: max-age`, `Expires`) and revalidates a stale one;
 *   `no-cache` always revalidates; `force-cache` serves any stored response;
 *   `only-if-cached` never goes to the network and rejects with a TypeError
 *   on a miss; `reload` fetches and stores; `no-store` fetches and leaves the
 *   cache alone.
 * - Revalidation sends `If-None-Match` / `If-Modified-Since` from the stored
 *   `ETag` / `Last-Modified`; a 304 serves the stored body with the new headers
 *   (so does a 200 with the stored strong `ETag` and length).
 * - A `Range` of one span is answered from a stored response with a 206 of
 *   those bytes, read from the stored object; a miss asks the origin for it.
 * - Only GET requests and successful responses (2xx but 206) are stored;
 *   never a response or request with `Cache-Control: no-store`, nor `Vary: *`.
 * - A body is stored as `fetch` hands it over, decoded, so its stored headers
 *   carry no `Content-Encoding`. A fetched body is stored first (streamed into Packice without being held
 *   whole when its length is known) and then served from Packice.
 * - Misses of one URL at once, in any processes sharing the peer, download
 *   it once: the first fetches, the others wait and read its entry. With a
 *   `client` of a daemon in a cluster, once per cluster (see
 *   {@link CachedFetchOptions.client}).
 *
 * @example Cache responses of a local server in a private peer
 * ```ts ignore
 * import { connect } from "@packice/packice";
 * import { createCachedFetch, PackiceCacheStorage } from "@packice/packice/integrations";
 * await using client = await connect("/tmp/packice.sock");
 * const cachedFetch = createCachedFetch({
 *   cache: new PackiceCacheStorage(client).open("http"),
 * });
 * const response = await cachedFetch("https://example.com/model.bin");
 * ```
 */
export function createCachedFetch(options: CachedFetchOptions): FetchFunction {
  const network = options.fetch ?? globalThis.fetch;
  let opened: Promise<PackiceCache> | undefined;
  const open = () =>
    opened ??= typeof options.cache === "function"
      ? options.cache()
      : Promise.resolve(options.cache);
  return async (input, init) => {
    const request = new Request(input, withoutCacheMode(init));
    const mode = init?.cache ?? "default";
    if ((request.method !== "GET" && request.method !== "HEAD") || mode === "no-store") {
      return await network(request);
    }
    const client = await options.client;
    if (client !== undefined && readsThrough(client)) {
      return await throughDaemon(client, network, request, mode);
    }
    const cache = await open();
    if (request.method === "HEAD") {
      const asGet = new Request(request, { method: "GET" });
      const stored = mode === "reload" ? undefined : await cache.match(asGet);
      if (stored === undefined) return await network(request);
      await stored.body?.cancel();
      return withUrl(new Response(null, stored), stored);
    }
    const whole = async (): Promise<Response> => {
      if (mode === "reload") return await fetchAndStore(cache, network, request);
      const stored = await cache.match(request);
      if (stored === undefined) {
        if (mode === "only-if-cached") {
          throw new TypeError(
            `Cannot fetch ${request.url}: not cached and cache is "only-if-cached"`,
          );
        }
        // One download per peer: whoever misses first fetches, the others wait for its entry.
        const first = await cache.once(request.url, () => fetchAndStore(cache, network, request));
        if (first.ran) return first.value;
        return (await cache.match(request)) ?? await fetchAndStore(cache, network, request);
      }
      if (mode === "force-cache" || mode === "only-if-cached") return stored;
      if (mode === "default" && isFresh(stored.headers)) return stored;
      const conditional = validators(stored.headers);
      if (conditional === undefined) {
        await stored.body?.cancel();
        return await fetchAndStore(cache, network, request);
      }
      const headers = new Headers(request.headers);
      for (const [name, value] of conditional) headers.set(name, value);
      const answer = await network(new Request(request, { headers }));
      if (answer.status !== 304 && !sameRepresentation(stored.headers, answer)) {
        await stored.body?.cancel();
        return await store(cache, network, request, answer);
      }
      await answer.body?.cancel();
      await cache.refresh(request, answer.headers);
      const merged = new Headers(stored.headers);
      for (const [name, value] of answer.headers) {
        if (name !== "content-length") merged.set(name, value);
      }
      return withUrl(
        new Response(stored.body, {
          status: stored.status,
          statusText: stored.statusText,
          headers: merged,
        }),
        stored,
      );
    };
    return await ranged(cache, request, await whole());
  };
}

/** Headers that tell one stored representation from another. */
const REPRESENTATION = ["etag", "last-modified", "content-length"];

/**
 * A whole response from the cache as the answer to a request's `Range`: a
 * 206 of those bytes read from the stored object (see `rangeResponse`),
 * when the entry matched again is the one answered; else the response as it is.
 */
async function ranged(
  cache: PackiceCache,
  request: Request,
  response: Response,
): Promise<Response> {
  if (response.status !== 200 || !request.headers.has("range")) return response;
  const found = await cache.matchHandle(request, { lazy: true });
  const handle = found?.handle;
  if (handle === undefined) return response;
  const same = REPRESENTATION.every((name) =>
    found!.response.headers.get(name) === response.headers.get(name)
  );
  const partial = same ? rangeResponse(request, response, handle) : undefined;
  if (partial === undefined) {
    await handle.close();
    return response;
  }
  await response.body?.cancel();
  return withUrl(await partial, response);
}

/** Whether `client`'s peer is a daemon's, which reads URLs through itself. */
function readsThrough(client: Client): boolean {
  const peer = client.peer as unknown as { fetchThrough?: unknown };
  return offersOrigin(peer) || typeof peer.fetchThrough === "function";
}

/** A GET or HEAD answered by the daemon's read-through, as `init.cache` says. */
async function throughDaemon(
  client: Client,
  network: FetchFunction,
  request: Request,
  mode: RequestCache,
): Promise<Response> {
  if (request.method === "GET") return await client.fetch(request, { cache: mode });
  // HEAD: the stored response's head when the cluster has one, else the origin's.
  try {
    const stored = await client.fetch(new Request(request, { method: "GET" }), {
      cache: "only-if-cached",
    });
    await stored.body?.cancel();
    return withUrl(new Response(null, stored), stored);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    return await network(request);
  }
}

let defaultFetch: FetchFunction | undefined;

/**
 * {@link createCachedFetch} on the peer `PACKICE_TARGET` names (a socket
 * path or URL, as `connect` takes; read where `--allow-env` grants it): a
 * daemon's read-through there (one download per cluster), else the cache
 * `fetch` of a {@link PackiceCacheStorage} on a private in-memory peer of
 * this process. Its connection to a daemon is open only while calls, or the
 * bodies they answered, are under way (read or cancel each body), so it
 * never keeps the process running.
 *
 * @example Fetch through the cache
 * ```ts ignore
 * import { cachedFetch } from "@packice/packice/integrations";
 * const first = await cachedFetch("https://example.com/data.json");
 * const again = await cachedFetch("https://example.com/data.json", { cache: "force-cache" });
 * ```
 */
export function cachedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  if (defaultFetch === undefined) {
    const target = defaultTarget();
    if (target === undefined || target.startsWith("memory://")) {
      const client = connect(target);
      defaultFetch = createCachedFetch({
        client,
        cache: async () => await new PackiceCacheStorage(await client).open("fetch"),
      });
    } else {
      const daemon = new ClientWhileUsed(target);
      defaultFetch = (input, init) =>
        daemon.use((client) => createCachedFetch({ client, cache: noCache })(input, init));
    }
  }
  return defaultFetch(input, init);
}

/** No cache of this process's: a daemon's read-through keeps what it fetched. */
function noCache(): Promise<PackiceCache> {
  return Promise.reject(new TypeError("cachedFetch on a daemon keeps no cache of its own"));
}

/**
 * The client of a daemon that {@link cachedFetch} uses, which no caller can
 * close: connected while calls or the bodies they answered are under way,
 * and closed once none is left, since an open connection to a daemon's
 * socket keeps the process running.
 */
class ClientWhileUsed {
  readonly #target: string;
  #client: Promise<Client> | undefined;
  #users = 0;
  readonly #unread = new FinalizationRegistry<() => void>((done) => done());

  constructor(target: string) {
    this.#target = target;
  }

  async use(call: (client: Client) => Promise<Response>): Promise<Response> {
    this.#users++;
    let response: Response;
    try {
      this.#client ??= connect(this.#target);
      response = await call(await this.#client);
    } catch (error) {
      this.#done();
      throw error;
    }
    if (response.body === null) {
      this.#done();
      return response;
    }
    return this.#untilRead(response);
  }

  /** The response, with a body that lets the client go once it is read, cancelled or dropped. */
  #untilRead(response: Response): Response {
    const reader = response.body!.getReader();
    let done: (() => void) | undefined = () => this.#done();
    const finish = () => {
      const once = done;
      done = undefined;
      if (once !== undefined) this.#unread.unregister(finish);
      once?.();
    };
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const next = await reader.read();
          if (!next.done) return controller.enqueue(next.value);
          finish();
          controller.close();
        } catch (error) {
          finish();
          throw error;
        }
      },
      cancel: async (reason) => {
        finish();
        await reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
    // Dropped unread: the stream behind it ends its lease then, and the client may go.
    this.#unread.register(body, finish, finish);
    return withUrl(new Response(body, response), response);
  }

  #done(): void {
    if (--this.#users > 0) return;
    const client = this.#client;
    this.#client = undefined;
    void client?.then((open) => open.close(), () => {});
  }
}

function defaultTarget(): string | undefined {
  try {
    return Deno.env.get("PACKICE_TARGET");
  } catch {
    return undefined;
  }
}

async function fetchAndStore(
  cache: PackiceCache,
  network: FetchFunction,
  request: Request,
): Promise<Response> {
  return await store(cache, network, request, await network(request));
}

async function store(
  cache: PackiceCache,
  network: FetchFunction,
  request: Request,
  response: Response,
): Promise<Response> {
  if (!storable(request, response)) return response;
  try {
    await cache.put(request, decoded(response));
  } catch {
    // The body is spent: a cache that cannot keep it answers from the network again.
    return await network(request);
  }
  return (await cache.match(request)) ?? await network(request);
}

/**
 * The response as `fetch` hands it over: its body already decoded. Stored as it
 * is, `Content-Encoding` and `Content-Length` would describe bytes it no longer has.
 */
function decoded(response: Response): Response {
  if (!response.headers.has("content-encoding")) return response;
  const headers = new Headers(response.headers);
  headers.delete("content-encoding");
  headers.delete("content-length");
  return withUrl(
    new Response(response.body, {
      status: response.status,
      statusText: response.statusText,
      headers,
    }),
    response,
  );
}

/**
 * `response` with the URL of the one it was made from (and whether that one
 * was redirected), which a `new Response` has not.
 */
function withUrl(response: Response, from: Response): Response {
  Object.defineProperty(response, "url", { value: from.url });
  if (from.redirected) Object.defineProperty(response, "redirected", { value: true });
  return response;
}

function storable(request: Request, response: Response): boolean {
  return storableResponse(request.headers, response);
}

function withoutCacheMode(init: RequestInit | undefined): RequestInit | undefined {
  if (init?.cache === undefined) return init;
  const { cache: _, ...rest } = init;
  return rest;
}
