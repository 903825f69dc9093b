/**
 * A read-through of an origin URL as a client asks a daemon for it: the
 * request (URL, the headers for the origin, the cache mode) and the answer
 * (the object the response is stored in, with the origin's status and
 * headers). The Unix socket carries both as JSON; HTTP as `GET /v1/fetch`.
 *
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import { isPlainObject } from "../core/plain_object.ts";

/** A cache mode of `RequestInit.cache`, as a read-through honours it. */
export type CacheMode =
  | "default"
  | "no-store"
  | "reload"
  | "no-cache"
  | "force-cache"
  | "only-if-cached";

const CACHE_MODES: readonly CacheMode[] = [
  "default",
  "no-store",
  "reload",
  "no-cache",
  "force-cache",
  "only-if-cached",
];

/** What a client asks a daemon to read through. */
export interface OriginRequest {
  /** The origin URL, `http:` or `https:`. */
  readonly url: string;
  /** Headers for the origin (such as `Authorization`): passed on, never stored nor logged. */
  readonly headers: readonly (readonly [string, string])[];
  /** As `RequestInit.cache`. Default `default`. */
  readonly cache?: CacheMode;
}

/** What a daemon answers: the object holding the response body, and the response's head. */
export interface OriginReply {
  /** The object whose bytes are the body. */
  readonly id: string;
  /** The origin's status. */
  readonly status: number;
  /** The origin's status text. */
  readonly statusText: string;
  /** The origin's response headers, as stored. */
  readonly headers: readonly (readonly [string, string])[];
  /** The URL the response came from when the origin redirected there; absent otherwise. */
  readonly url?: string;
}

/** An optional capability of a peer: read an origin URL through the daemon. */
export interface OriginSource {
  /** Reads `request.url` through the daemon's cache (one download per cluster). */
  fetchOrigin(request: OriginRequest): Promise<OriginReply>;
}

/** Whether `peer` offers {@link OriginSource.fetchOrigin}. */
export function offersOrigin(peer: unknown): peer is OriginSource {
  return typeof (peer as Partial<OriginSource>)?.fetchOrigin === "function";
}

/**
 * Checks an origin request that came over a transport.
 *
 * @throws {InvalidArgumentError} Naming what is wrong.
 */
export function originRequest(value: unknown): OriginRequest {
  if (!isPlainObject(value)) {
    throw new InvalidArgumentError("Invalid fetch request: expected a JSON object");
  }
  const { url, headers, cache } = value as Record<string, unknown>;
  const checked = originUrl(url);
  if (
    !Array.isArray(headers) ||
    !headers.every((pair) =>
      Array.isArray(pair) && pair.length === 2 && typeof pair[0] === "string" &&
      typeof pair[1] === "string"
    )
  ) {
    throw new InvalidArgumentError("Invalid fetch headers: expected [name, value] string pairs");
  }
  if (cache !== undefined && !CACHE_MODES.includes(cache as CacheMode)) {
    throw new InvalidArgumentError(
      `Invalid fetch cache mode: ${String(cache)}: expected one of ${CACHE_MODES.join(", ")}`,
    );
  }
  return {
    url: checked,
    headers: headers as [string, string][],
    ...(cache === undefined ? {} : { cache: cache as CacheMode }),
  };
}

/**
 * Checks an origin URL: absolute `http:` or `https:`, fragment dropped.
 *
 * @throws {InvalidArgumentError} For anything else.
 */
export function originUrl(value: unknown): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new InvalidArgumentError(`Invalid fetch URL: ${String(value)}: expected an absolute URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError(`Invalid fetch URL: ${url.protocol}: expected http: or https:`);
  }
  url.hash = "";
  return url.href;
}
