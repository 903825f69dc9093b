/**
 * PackiceCache: one idea, the Web Cache API over a Packice client, each
 * method with the checks and matching the specification asks for. What it
 * builds on lives apart: entries and how a request matches one in
 * `cache_entry.ts`, the list of entries in `index_chain.ts`, bodies in
 * `body.ts`, the lock that lets one process of many fetch in `peer_lock.ts`.
 *
 * @module
 */
import type { Client } from "../client/client.ts";
import type { ObjectHandle } from "../client/object_handle.ts";
import { NotFoundError } from "../core/errors.ts";
import { toHex } from "../core/hex.ts";
import { bodyStream, putBody } from "./body.ts";
import {
  type CacheEntry,
  type CacheIndex,
  type CacheQueryOptions,
  isNullBodyStatus,
  matches,
  type RequestQuery,
  toQuery,
  varyFields,
} from "./cache_entry.ts";
import { IndexChain } from "./index_chain.ts";
import { runOnce } from "./peer_lock.ts";

export type { CacheQueryOptions } from "./cache_entry.ts";

/** Headers of a 304 answer that describe its own (empty) body, not the stored one. */
const UNMERGED_HEADERS = new Set(["content-length", "content-encoding", "transfer-encoding"]);

/** How much of a URL a body's metadata keeps, for people listing objects. */
const MAX_URL_META = 2048;

/** How often a read retries when a writer deletes the body it was about to open. */
const READ_ATTEMPTS = 8;

/**
 * The Web Cache API (`Cache` of the Service Worker specification) over a
 * Packice client, so that processes and hosts sharing a peer share a cache.
 * Get one from {@link PackiceCacheStorage.open}.
 *
 * Each body is an immutable object of its own; the list of entries is one
 * small object replaced atomically, so a reader sees every entry whole, and
 * concurrent writers in other processes never lose each other's entries.
 * Bodies stream out of the peer (copied straight from shared memory where
 * the peer maps it) and stream in without being held whole when their length
 * is known.
 *
 * @example Put and match
 * ```ts
 * import { connect, PackiceCacheStorage } from "@packice/packice";
 * await using client = await connect();
 * const caches = new PackiceCacheStorage(client);
 * const cache = await caches.open("assets");
 * await cache.put("https://example.com/a.txt", new Response("hello"));
 * const response = await cache.match("https://example.com/a.txt");
 * console.log(await response?.text()); // "hello"
 * ```
 */
export class PackiceCache {
  readonly #client: Client;
  readonly #bodyPrefix: string;
  readonly #lockPrefix: string;
  readonly #index: IndexChain<CacheIndex>;

  /**
   * A cache whose objects' ids start with `prefix`; most code gets one from
   * {@link PackiceCacheStorage.open} instead.
   *
   * @param client The client of the peer that holds the cache.
   * @param prefix The id prefix of the cache's objects, unique to it.
   */
  constructor(client: Client, prefix: string) {
    this.#client = client;
    this.#bodyPrefix = `${prefix}b.`;
    this.#lockPrefix = `${prefix}l.`;
    this.#index = new IndexChain(client, `${prefix}i.`, () => ({ entries: [] }));
  }

  /**
   * The first stored response that matches the request, or undefined. Read
   * or cancel its body: until then it holds a lease on the body's object, as
   * an unread `fetch` body holds its connection (a body dropped unread lets
   * go of it when garbage-collected, a safety net only).
   *
   * @param request A request, or a URL to GET.
   * @param options How to match.
   */
  async match(
    request: RequestInfo | URL,
    options?: CacheQueryOptions,
  ): Promise<Response | undefined> {
    return (await this.#responses(request, options, true))[0];
  }

  /**
   * Not in the Cache API: the first matching entry with its body as an open
   * {@link ObjectHandle}, whose `bytes` are a zero-copy view of shared memory
   * where the peer maps the object. The response carries status and headers
   * only. Close the handle when done. Over HTTP the handle holds a copy of
   * the whole object, unless `lazy: true`: then its `stream()` and
   * `readInto()` read ranges as they are asked for, and `bytes` throws (see
   * `GetOptions.lazy`).
   *
   * @example Read a cached body without copying it
   * ```ts
   * import { connect, PackiceCacheStorage } from "@packice/packice";
   * await using client = await connect();
   * const cache = await new PackiceCacheStorage(client).open("weights");
   * await cache.put("https://example.com/w.bin", new Response(new Uint8Array(8)));
   * const found = await cache.matchHandle("https://example.com/w.bin");
   * console.log(found?.handle?.bytes.length); // 8
   * await found?.handle?.close();
   * ```
   */
  async matchHandle(
    request: RequestInfo | URL,
    options?: CacheQueryOptions & { readonly lazy?: boolean },
  ): Promise<{ response: Response; handle: ObjectHandle | undefined } | undefined> {
    const first = (await this.#open(request, options, true, options?.lazy === true))?.[0];
    if (first === undefined) return undefined;
    return { response: toResponse(first.entry, undefined), handle: first.handle };
  }

  /**
   * Every stored response that matches the request, in insertion order; all
   * of them without a request.
   */
  async matchAll(
    request?: RequestInfo | URL,
    options?: CacheQueryOptions,
  ): Promise<readonly Response[]> {
    return await this.#responses(request, options, false);
  }

  /** The stored requests that match, or all of them, in insertion order. */
  async keys(
    request?: RequestInfo | URL,
    options?: CacheQueryOptions,
  ): Promise<readonly Request[]> {
    const query = request === undefined ? undefined : queryOf(request, options);
    if (query === null) return [];
    const { value } = await this.#index.read();
    return value.entries
      .filter((entry) => query === undefined || matches(query, entry, options))
      .map((entry) =>
        new Request(entry.url, { method: entry.method, headers: entry.requestHeaders })
      );
  }

  /**
   * Fetches a URL and stores the response.
   *
   * @throws {TypeError} When the request cannot be cached or the response is not OK.
   */
  add(request: RequestInfo | URL): Promise<void> {
    return this.addAll([request]);
  }

  /**
   * Fetches each request and stores all the responses in one step, or none
   * of them when one fails.
   *
   * @throws {TypeError} When a request cannot be cached or a response is not OK.
   */
  async addAll(requests: Iterable<RequestInfo | URL>): Promise<void> {
    const list = [...requests].map((request) => new Request(request));
    for (const request of list) checkRequest(request);
    const responses = await Promise.all(list.map((request) => fetch(request)));
    const stored: CacheEntry[] = [];
    try {
      for (const [i, response] of responses.entries()) {
        if (!response.ok || response.status === 206) {
          throw new TypeError(
            `Cannot add ${list[i]!.url} to the cache: the response status is ${response.status}`,
          );
        }
        checkResponse(response);
      }
      for (const [i, response] of responses.entries()) {
        stored.push(await this.#store(list[i]!, response));
      }
    } catch (error) {
      await Promise.all(responses.map((response) => response.body?.cancel().catch(() => {})));
      await this.#deleteBodies(stored);
      throw error;
    }
    await this.#commit(stored);
  }

  /**
   * Stores a response for a request, replacing the entries it matches at
   * once: a reader sees the old entries or the new one, never a mix.
   *
   * @param request A GET request, or a URL.
   * @param response Its response; its body is consumed.
   * @throws {TypeError} For a request that is not a GET of an http(s) URL, a
   * 206 response, `Vary: *`, or a body already used.
   */
  async put(request: RequestInfo | URL, response: Response): Promise<void> {
    const inner = request instanceof Request ? request : new Request(request);
    checkRequest(inner);
    checkResponse(response);
    const entry = await this.#store(inner, response);
    try {
      await this.#commit([entry]);
    } catch (error) {
      await this.#deleteBodies([entry]);
      throw error;
    }
  }

  /**
   * Removes the entries that match.
   *
   * @returns Whether any entry was removed.
   */
  async delete(request: RequestInfo | URL, options?: CacheQueryOptions): Promise<boolean> {
    const query = queryOf(request, options);
    if (query === null) return false;
    const removed = await this.#index.update((current) => {
      const kept = current.entries.filter((entry) => !matches(query, entry, options));
      const gone = current.entries.filter((entry) => matches(query, entry, options));
      return gone.length === 0 ? { result: gone } : { value: { entries: kept }, result: gone };
    });
    await this.#deleteBodies(removed);
    return removed.length > 0;
  }

  /**
   * @internal Merges the headers of a 304 answer into the entries the
   * request matches, keeping their bodies, as HTTP caches do on revalidation.
   */
  async refresh(request: RequestInfo | URL, fresh: Headers): Promise<void> {
    const query = toQuery(request);
    await this.#index.update((current) => {
      let changed = false;
      const entries = current.entries.map((entry) => {
        if (!matches(query, entry)) return entry;
        changed = true;
        const headers = new Headers(entry.headers);
        for (const [name, value] of fresh) {
          if (!UNMERGED_HEADERS.has(name)) headers.set(name, value);
        }
        return { ...entry, headers: [...headers] };
      });
      return changed ? { value: { entries }, result: undefined } : { result: undefined };
    });
  }

  /**
   * @internal Runs `fn` unless a caller in any process sharing the peer is
   * running it for the same key; then waits until that one ends and returns
   * `{ ran: false }` (see `peer_lock.ts`).
   */
  async once<T>(
    key: string,
    fn: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
    return await runOnce(this.#client, `${this.#lockPrefix}${toHex(new Uint8Array(digest))}`, fn);
  }

  /** @internal Deletes every object of the cache, for `PackiceCacheStorage.delete`. */
  async destroy(): Promise<void> {
    const { value } = await this.#index.read();
    await this.#index.clear();
    await this.#deleteBodies(value.entries);
  }

  async #responses(
    request: RequestInfo | URL | undefined,
    options: CacheQueryOptions | undefined,
    firstOnly: boolean,
  ): Promise<Response[]> {
    // A body reads its object as the reader pulls: over HTTP, never whole in memory.
    const found = await this.#open(request, options, firstOnly, true);
    return (found ?? []).map(({ entry, handle }) => toResponse(entry, handle));
  }

  /** The matching entries with their bodies opened, or undefined when none can match. */
  async #open(
    request: RequestInfo | URL | undefined,
    options: CacheQueryOptions | undefined,
    firstOnly: boolean,
    lazy: boolean,
  ): Promise<{ entry: CacheEntry; handle: ObjectHandle | undefined }[] | undefined> {
    const query = request === undefined ? undefined : queryOf(request, options);
    if (query === null) return undefined;
    for (let attempt = 1;; attempt++) {
      const { value } = await this.#index.read();
      let found = value.entries.filter((entry) =>
        query === undefined || matches(query, entry, options)
      );
      if (firstOnly) found = found.slice(0, 1);
      const handles: (ObjectHandle | undefined)[] = [];
      try {
        for (const entry of found) {
          handles.push(
            entry.body === null ? undefined : await this.#client.get(entry.body, { lazy }),
          );
        }
      } catch (error) {
        for (const handle of handles) await handle?.close();
        // A writer replaced the entry after this read and deleted its body: read again.
        if (error instanceof NotFoundError && attempt < READ_ATTEMPTS) continue;
        throw error;
      }
      return found.map((entry, i) => ({ entry, handle: handles[i] }));
    }
  }

  async #store(request: Request, response: Response): Promise<CacheEntry> {
    const id = `${this.#bodyPrefix}${crypto.randomUUID()}`;
    const body = response.body;
    let stored: string | null = null;
    if (body !== null) {
      const length = response.headers.get("content-length");
      // A decoded body's length is not its Content-Length.
      const declared = length !== null && !response.headers.has("content-encoding") &&
          /^\d+$/.test(length)
        ? Number(length)
        : undefined;
      stored = await putBody(this.#client, body, {
        id,
        meta: { url: request.url.slice(0, MAX_URL_META) },
        ...(declared === undefined ? {} : { size: declared }),
      });
    }
    return {
      url: toQuery(request).url,
      method: "GET",
      requestHeaders: varyFields(response.headers).flatMap((field) => {
        const value = request.headers.get(field);
        return value === null ? [] : [[field, value] as [string, string]];
      }),
      type: response.type === "error" ? "error" : "default",
      status: response.status,
      statusText: response.statusText,
      headers: [...response.headers],
      responseUrl: response.url,
      body: stored,
    };
  }

  /** Replaces what each new entry's request matches (its own Vary honoured) with the entries. */
  async #commit(added: CacheEntry[]): Promise<void> {
    const removed = await this.#index.update((current) => {
      let entries = current.entries;
      const gone: CacheEntry[] = [];
      for (const entry of added) {
        const query = entryQuery(entry);
        if (
          added.some((other) => other !== entry && entries.includes(other) && matches(query, other))
        ) {
          throw new DOMException("Cannot add one request twice in one batch", "InvalidStateError");
        }
        const kept: CacheEntry[] = [];
        for (const old of entries) (matches(query, old) ? gone : kept).push(old);
        entries = [...kept, entry];
      }
      return { value: { entries }, result: gone };
    });
    await this.#deleteBodies(removed);
  }

  async #deleteBodies(entries: readonly CacheEntry[]): Promise<void> {
    for (const entry of entries) {
      if (entry.body === null) continue;
      try {
        await this.#client.delete(entry.body);
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    }
  }
}

/** A query, or null when a non-GET request can match nothing. */
function queryOf(request: RequestInfo | URL, options?: CacheQueryOptions): RequestQuery | null {
  const query = toQuery(request);
  return !options?.ignoreMethod && query.method !== "GET" ? null : query;
}

function entryQuery(entry: CacheEntry): RequestQuery {
  return { url: entry.url, method: entry.method, headers: new Headers(entry.requestHeaders) };
}

function checkRequest(request: Request): void {
  const scheme = new URL(request.url).protocol;
  if (scheme !== "http:" && scheme !== "https:") {
    throw new TypeError(`Cannot cache ${request.url}: only http and https URLs can be cached`);
  }
  if (request.method !== "GET") {
    throw new TypeError(`Cannot cache a ${request.method} request: only GET can be cached`);
  }
}

function checkResponse(response: Response): void {
  if (response.status === 206) {
    throw new TypeError("Cannot cache a partial response: status 206");
  }
  if (varyFields(response.headers).includes("*")) {
    throw new TypeError("Cannot cache a response with Vary: *");
  }
  if (response.bodyUsed || response.body?.locked) {
    throw new TypeError("Cannot cache a response whose body is already used");
  }
}

function toResponse(entry: CacheEntry, handle: ObjectHandle | undefined): Response {
  if (entry.type === "error") {
    void handle?.close();
    return Response.error();
  }
  let body: ReadableStream<Uint8Array> | null = null;
  if (handle !== undefined) {
    if (isNullBodyStatus(entry.status)) void handle.close();
    else body = bodyStream(handle);
  }
  const response = new Response(body, {
    status: entry.status,
    statusText: entry.statusText,
    headers: entry.headers,
  });
  if (entry.responseUrl !== "") {
    Object.defineProperty(response, "url", { value: entry.responseUrl });
  }
  return response;
}
