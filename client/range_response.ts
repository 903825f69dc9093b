/**
 * A request's `Range` answered from a whole response stored in an object:
 * a 206 of those bytes streamed from the object (see `rangeAnswer`).
 *
 * @module
 */
import { rangeAnswer, type ResponseHead } from "../p2p/origin/range_answer.ts";
import type { ObjectHandle } from "./object_handle.ts";

/**
 * The answer to `request`'s `Range` from the whole response `head` whose body
 * `handle` holds: a 206 of one span, or a 416 past its end (the handle
 * closed); undefined when the whole response is the answer (see `rangeAnswer`).
 */
export function rangeResponse(
  request: Request,
  head: ResponseHead,
  handle: ObjectHandle,
): Response | Promise<Response> | undefined {
  const answer = rangeAnswer(request.method, request.headers, head, handle.size);
  if (answer === undefined) return undefined;
  if (answer.range === undefined) {
    return handle.close().then(() => new Response(null, answer.head));
  }
  return new Response(handle.stream(answer.range), answer.head);
}
