/**
 * A request's `Range` answered from a whole response stored in an object:
 * a 206 of those bytes streamed from the object, as the origin would have
 * sent it.
 *
 * @module
 */
import { type ByteRange, parseRange } from "../transport/http/conditional.ts";
import type { ObjectHandle } from "./object_handle.ts";

/** The status line and headers of the whole response. */
interface Head {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
}

/**
 * The answer to `request`'s `Range` from the whole response `head` whose body
 * `handle` holds: a 206 of one span, or a 416 past its end (the handle
 * closed); undefined when the whole response is the answer (no range, several,
 * an `If-Range` to check at the origin, or a status other than 200), as RFC
 * 9110 lets a server do.
 */
export function rangeResponse(
  request: Headers,
  head: Head,
  handle: ObjectHandle,
): Response | Promise<Response> | undefined {
  if (head.status !== 200 || request.has("if-range")) return undefined;
  let range: ByteRange | undefined;
  try {
    range = parseRange(request.get("range"), handle.size);
  } catch {
    return handle.close().then(() =>
      new Response(null, {
        status: 416,
        statusText: "Range Not Satisfiable",
        headers: { "content-range": `bytes */${handle.size}` },
      })
    );
  }
  if (range === undefined) return undefined;
  const headers = new Headers(head.headers);
  headers.set("content-length", String(range.end - range.start));
  headers.set("content-range", `bytes ${range.start}-${range.end - 1}/${handle.size}`);
  return new Response(handle.stream(range), {
    status: 206,
    statusText: "Partial Content",
    headers,
  });
}
