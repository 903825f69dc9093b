/**
 * What an origin object's metadata keeps of the response (status, status
 * text, headers, URL), and which request headers go to the origin. Request
 * headers are never stored: an `Authorization` reaches the origin and
 * nothing else.
 *
 * @module
 */
import { InvalidArgumentError } from "../../core/errors.ts";
import type { Meta } from "../../core/validate.ts";
import type { OriginReply } from "../../transport/origin_fetch.ts";
import { rangeValidator } from "./freshness.ts";

/** Headers that describe a connection, not the response: neither stored nor passed on. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Response headers never stored: cookies are the user's, and the body is stored decoded. */
const NOT_STORED = new Set(["set-cookie", "set-cookie2", "content-encoding"]);

/**
 * Request headers not passed to the origin: the download is of the whole
 * body in `identity`, and a `Range` (with its `If-Range`) is answered from it.
 */
const NOT_PASSED = new Set(["host", "accept-encoding", "range", "if-range"]);

/** The largest total size of stored response headers. */
const MAX_HEADER_BYTES = 32 * 1024;

/**
 * The metadata of an origin object: `origin` holds the URL asked for (the
 * object's key), status, status text, the response headers worth keeping,
 * and `responseUrl`, the URL the origin redirected to, when it did.
 */
export function originMeta(url: string, response: Response): Meta {
  return {
    origin: {
      url,
      ...(response.redirected && response.url !== "" ? { responseUrl: response.url } : {}),
      status: response.status,
      statusText: response.statusText,
      headers: kept(response.headers),
      fetchedAt: Date.now(),
    },
  };
}

/**
 * Stored metadata as a 304 leaves it (RFC 9111 §4.3.4, §3.2): each header
 * the 304 carries that may be stored replaces those of its name, but
 * `Content-Length` and `Content-Range`, which describe the stored body; and
 * a `Date` of now when it carries none (RFC 9110 §6.6.1), so the freshness
 * it grants counts from now.
 */
export function refreshedMeta(meta: Meta, notModified: Headers): Meta {
  const origin = meta.origin as Record<string, unknown>;
  const headers = storedHeaders(meta);
  const update = kept(notModified).filter(([name]) => !BODY_HEADERS.has(name));
  for (const [name] of update) headers.delete(name);
  for (const [name, value] of update) headers.append(name, value);
  if (!notModified.has("date")) headers.set("date", new Date().toUTCString());
  return { ...meta, origin: { ...origin, headers: kept(headers) } };
}

/** Headers of the stored body that a 304 does not change. */
const BODY_HEADERS = new Set(["content-length", "content-range"]);

/**
 * The response headers worth keeping: neither hop-by-hop nor named in
 * `Connection`, no cookie, at most {@link MAX_HEADER_BYTES} in all.
 */
function kept(headers: Headers): [string, string][] {
  const connection = new Set(
    (headers.get("connection") ?? "").split(",").map((name) => name.trim().toLowerCase()),
  );
  const pairs: [string, string][] = [];
  let bytes = 0;
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name) || NOT_STORED.has(name) || connection.has(name)) continue;
    bytes += name.length + value.length;
    if (bytes > MAX_HEADER_BYTES) break;
    pairs.push([name, value]);
  }
  return pairs;
}

/**
 * The response head stored in an origin object's metadata.
 *
 * @throws {InvalidArgumentError} When the metadata is not an origin object's.
 */
export function replyOf(id: string, meta: Meta): OriginReply {
  const origin = meta.origin as Record<string, unknown> | undefined;
  if (
    typeof origin !== "object" || origin === null || typeof origin.status !== "number" ||
    !Array.isArray(origin.headers)
  ) {
    throw new InvalidArgumentError(`Object ${id} is not a stored origin response`);
  }
  return {
    id,
    status: origin.status,
    statusText: typeof origin.statusText === "string" ? origin.statusText : "",
    headers: origin.headers as [string, string][],
    ...(typeof origin.responseUrl === "string" ? { url: origin.responseUrl } : {}),
  };
}

/** The stored response headers of an origin object. */
export function storedHeaders(meta: Meta): Headers {
  const origin = meta.origin as { headers?: [string, string][] } | undefined;
  return new Headers(Array.isArray(origin?.headers) ? origin.headers : []);
}

/**
 * The headers sent to the origin: the caller's, without hop-by-hop ones and
 * with `Accept-Encoding: identity`, so the bytes stored are the bytes
 * `Content-Length` counts.
 */
export function requestHeaders(pairs: readonly (readonly [string, string])[]): Headers {
  const headers = new Headers();
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || NOT_PASSED.has(lower)) continue;
    headers.append(name, value);
  }
  headers.set("accept-encoding", "identity");
  return headers;
}

/** The validator `If-Range` takes, from stored metadata. */
export function validatorOf(meta: Meta): string | undefined {
  return rangeValidator(storedHeaders(meta));
}

/** Whether two stored responses are one version by their validators. */
export function sameVersion(a: Meta, b: Meta | undefined): boolean {
  if (b === undefined) return false;
  const [x, y] = [storedHeaders(a), storedHeaders(b)];
  return (x.get("etag") ?? x.get("last-modified")) === (y.get("etag") ?? y.get("last-modified"));
}
