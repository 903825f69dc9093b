/**
 * The entries of a Packice-backed Web Cache and the Service Worker
 * specification's rules for matching a request against them ("Request
 * Matches Cached Item").
 */

/** Options of the Cache API's queries. */
export interface CacheQueryOptions {
  /** Ignore the query string of URLs. */
  readonly ignoreSearch?: boolean;
  /** Match requests of any method, not only GET. */
  readonly ignoreMethod?: boolean;
  /** Ignore the `Vary` header of stored responses. */
  readonly ignoreVary?: boolean;
}

/** One stored request and response; the body is an immutable object of its own. */
export interface CacheEntry {
  /** The request URL without its fragment. */
  readonly url: string;
  /** The request's method: always GET, as `put` refuses others. */
  readonly method: string;
  /**
   * The request's headers that the response's `Vary` names, the only ones
   * matching needs: a cache shared by processes keeps no other request
   * header (such as `Authorization`), so `keys()` returns requests with these.
   */
  readonly requestHeaders: [string, string][];
  /** "default", or "error" for `Response.error()`. */
  readonly type: "default" | "error";
  readonly status: number;
  readonly statusText: string;
  readonly headers: [string, string][];
  /** The response's URL, if any. */
  readonly responseUrl: string;
  /** The object holding the body, or null for a response without one. */
  readonly body: string | null;
}

/** The value of a cache's index. */
export interface CacheIndex {
  readonly entries: CacheEntry[];
}

/** A request as the queries see it: the URL (without fragment), method and headers. */
export interface RequestQuery {
  readonly url: string;
  readonly method: string;
  readonly headers: Headers;
}

/**
 * Turns what the Cache API accepts as a request into a query: a string is a
 * GET of that URL.
 *
 * @throws {TypeError} When a string is not a valid absolute URL (as `new Request` throws).
 */
export function toQuery(request: RequestInfo | URL): RequestQuery {
  if (request instanceof Request) {
    return { url: withoutFragment(request.url), method: request.method, headers: request.headers };
  }
  const parsed = new Request(request);
  return { url: withoutFragment(parsed.url), method: "GET", headers: parsed.headers };
}

/** The URL without its fragment. */
function withoutFragment(url: string): string {
  const hash = url.indexOf("#");
  return hash < 0 ? url : url.slice(0, hash);
}

/** Whether a query matches a stored entry, as "Request Matches Cached Item" says. */
export function matches(
  query: RequestQuery,
  entry: CacheEntry,
  options: CacheQueryOptions = {},
): boolean {
  if (!options.ignoreMethod && query.method !== "GET") return false;
  const queryUrl = options.ignoreSearch ? withoutSearch(query.url) : query.url;
  const cachedUrl = options.ignoreSearch ? withoutSearch(entry.url) : entry.url;
  if (queryUrl !== cachedUrl) return false;
  if (options.ignoreVary) return true;
  const vary = varyFields(new Headers(entry.headers));
  if (vary.length === 0) return true;
  const stored = new Headers(entry.requestHeaders);
  for (const field of vary) {
    if (field === "*") return false;
    if (stored.get(field) !== query.headers.get(field)) return false;
  }
  return true;
}

/** The field names a `Vary` header lists, lowercased. */
export function varyFields(headers: Headers): string[] {
  const vary = headers.get("vary");
  if (vary === null) return [];
  return vary.split(",").map((field) => field.trim().toLowerCase()).filter((field) => field);
}

/** Statuses whose responses have no body. */
export function isNullBodyStatus(status: number): boolean {
  return status === 101 || status === 103 || status === 204 || status === 205 || status === 304;
}

function withoutSearch(url: string): string {
  const parsed = new URL(url);
  parsed.search = "";
  return parsed.href;
}
