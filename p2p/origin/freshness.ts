/**
 * HTTP caching rules both read-throughs share (a daemon's and
 * `cachedFetch`'s): whether a stored response may be served without asking
 * the origin, and the conditional headers that revalidate it.
 *
 * @module
 */

/** Cache-Control directives by lowercase name, with their values. */
export function directives(headers: Headers): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of (headers.get("cache-control") ?? "").split(",")) {
    const [name, value = ""] = part.split("=", 2);
    if (name?.trim()) found.set(name.trim().toLowerCase(), value.trim().replace(/^"|"$/g, ""));
  }
  return found;
}

/** Whether `Cache-Control: no-store` is among `headers`. */
export function noStore(headers: Headers): boolean {
  return directives(headers).has("no-store");
}

/** Whether a stored response may be served without asking the origin. */
export function isFresh(headers: Headers): boolean {
  const control = directives(headers);
  if (control.has("no-cache")) return false;
  if (control.has("immutable")) return true;
  const date = Date.parse(headers.get("date") ?? "");
  if (Number.isNaN(date)) return false;
  const age = Math.max(0, Date.now() - date) / 1000 + (Number(headers.get("age")) || 0);
  const maxAge = control.get("s-maxage") ?? control.get("max-age");
  if (maxAge !== undefined) return /^\d+$/.test(maxAge) && age < Number(maxAge);
  const expires = Date.parse(headers.get("expires") ?? "");
  return !Number.isNaN(expires) && Date.now() < expires;
}

/** The conditional headers that revalidate a stored response, if it has validators. */
export function validators(headers: Headers): [string, string][] | undefined {
  const found: [string, string][] = [];
  const etag = headers.get("etag");
  if (etag !== null) found.push(["if-none-match", etag]);
  const modified = headers.get("last-modified");
  if (modified !== null) found.push(["if-modified-since", modified]);
  return found.length === 0 ? undefined : found;
}

/**
 * Whether a 200 to a conditional request carries the representation stored:
 * the same strong `ETag`, a byte-for-byte promise (RFC 9110 §8.8.1), and no
 * other length. An origin that ignores `If-None-Match` answers so; its body
 * need not be downloaded again.
 */
export function sameRepresentation(stored: Headers, answer: Response): boolean {
  const etag = stored.get("etag");
  if (answer.status !== 200 || etag === null || etag.startsWith("W/")) return false;
  if (answer.headers.get("etag") !== etag) return false;
  const length = answer.headers.get("content-length");
  return length === null || length === stored.get("content-length");
}

/** The validator `If-Range` takes: a strong `ETag`, else `Last-Modified`. */
export function rangeValidator(headers: Headers): string | undefined {
  const etag = headers.get("etag");
  if (etag !== null && !etag.startsWith("W/")) return etag;
  return headers.get("last-modified") ?? undefined;
}

/** Whether a response may be stored: 2xx but 206, no `no-store`, no `Vary: *`. */
export function storable(request: Headers, response: Response): boolean {
  if (!response.ok || response.status === 206) return false;
  if (noStore(request) || noStore(response.headers)) return false;
  return !(response.headers.get("vary") ?? "").split(",").some((field) => field.trim() === "*");
}

/**
 * Whether a response may be kept as the one object of its URL: storable,
 * and varying at most by `Accept-Encoding` (always `identity` here), since
 * one object answers every request for the URL.
 */
export function shareable(request: Headers, response: Response): boolean {
  if (!storable(request, response)) return false;
  const vary = (response.headers.get("vary") ?? "").split(",").map((field) =>
    field.trim().toLowerCase()
  );
  return vary.every((field) => field === "" || field === "accept-encoding");
}
