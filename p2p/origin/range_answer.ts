/**
 * What a request's `Range` gets from a whole stored response, wherever the
 * read-through answers (the daemon's `/v1/fetch`, `client.fetch`,
 * `cachedFetch`): one span is a 206 of those bytes, a span past the end a
 * 416, and anything else the whole response (RFC 9110 §14.2 lets a server
 * ignore `Range`).
 *
 * @module
 */
import { type ByteRange, parseRange } from "../../transport/http/conditional.ts";

/** The status line and headers of a whole response. */
export interface ResponseHead {
  /** Its status. */
  readonly status: number;
  /** Its status text. */
  readonly statusText: string;
  /** Its headers. */
  readonly headers: Headers;
}

/** The answer to a `Range`: the head to send, and the span of the body when it is a 206. */
export interface RangeAnswer {
  /** A 206 with `Content-Range` and the span's `Content-Length`, or a 416. */
  readonly head: ResponseHead;
  /** The bytes a 206 sends; undefined for a 416. */
  readonly range: ByteRange | undefined;
}

/**
 * The answer to `request`'s `Range` from the whole response `head` of
 * `size` bytes, or undefined when the whole response is the answer: no
 * `Range`, several spans, a method other than GET (a HEAD is answered
 * whole), a status other than 200, or an `If-Range` other than the stored
 * strong `ETag` or `Last-Modified` (RFC 9110 §13.1.5).
 */
export function rangeAnswer(
  method: string,
  request: Headers,
  head: ResponseHead,
  size: number,
): RangeAnswer | undefined {
  if (method !== "GET" || head.status !== 200 || !request.has("range")) return undefined;
  const ifRange = request.get("if-range");
  if (ifRange !== null && !matchesIfRange(ifRange, head.headers)) return undefined;
  let range: ByteRange | undefined;
  try {
    range = parseRange(request.get("range"), size);
  } catch {
    // The response's other headers (validators, `Packice-Object`) stay; those of its body go.
    const headers = new Headers(head.headers);
    headers.delete("content-type");
    headers.delete("content-length");
    headers.set("content-range", `bytes */${size}`);
    headers.set("accept-ranges", "bytes");
    return {
      head: { status: 416, statusText: "Range Not Satisfiable", headers },
      range: undefined,
    };
  }
  if (range === undefined) return undefined;
  const headers = new Headers(head.headers);
  headers.set("content-length", String(range.end - range.start));
  headers.set("content-range", `bytes ${range.start}-${range.end - 1}/${size}`);
  headers.set("accept-ranges", "bytes");
  return { head: { status: 206, statusText: "Partial Content", headers }, range };
}

/**
 * Whether `If-Range` names the stored response: its strong `ETag` (a weak
 * tag never matches), or exactly its `Last-Modified` date.
 */
function matchesIfRange(ifRange: string, stored: Headers): boolean {
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith("W/")) {
    const etag = stored.get("etag");
    return etag !== null && !etag.startsWith("W/") && etag === value;
  }
  const modified = stored.get("last-modified");
  return modified !== null && modified === value;
}
