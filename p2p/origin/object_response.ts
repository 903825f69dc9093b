/**
 * A stored origin response as a `Response`: the origin's status and
 * headers, and the object's bytes (those a `Range` asks for, see
 * `rangeAnswer`) streamed under a READ lease that ends when the body is
 * read or cancelled.
 *
 * @module
 */
import { Access } from "../../core/lease.ts";
import type { Peer } from "../../core/peer.ts";
import type { OriginReply } from "../../transport/origin_fetch.ts";
import { rangeAnswer } from "./range_answer.ts";

/** Bytes per chunk of a streamed body. */
const CHUNK = 1 << 20;

/** Statuses whose responses have no body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** The header that names the URL a response came from when the origin redirected. */
export const RESPONSE_URL_HEADER = "packice-response-url";

/**
 * The response `reply` describes, as the answer to a request of `method`
 * with `request` headers: its body read from the object it names, none for
 * a HEAD.
 */
export async function responseOf(
  peer: Peer,
  reply: OriginReply,
  method = "GET",
  request: Headers = new Headers(),
): Promise<Response> {
  const headers = new Headers(reply.headers as [string, string][]);
  headers.set("packice-object", reply.id);
  if (reply.url !== undefined) headers.set(RESPONSE_URL_HEADER, reply.url);
  const whole = { status: reply.status, statusText: reply.statusText, headers };
  if (NULL_BODY.has(reply.status)) return new Response(null, whole);
  const { lease, blobs } = await peer.acquire(reply.id, Access.READ);
  let ended = false;
  const end = async () => {
    if (ended) return;
    ended = true;
    await peer.release(lease.id).catch(() => {});
  };
  let size = 0;
  for (const each of blobs) size += each.size;
  headers.set("content-length", String(size));
  if (reply.status === 200) headers.set("accept-ranges", "bytes");
  const answer = rangeAnswer(method, request, whole, size);
  const init = answer?.head ?? whole;
  if (method === "HEAD" || (answer !== undefined && answer.range === undefined)) {
    await end();
    return new Response(null, init);
  }
  // Where the body starts and ends, over the blobs one after the other.
  let position = answer?.range?.start ?? 0;
  const last = answer?.range?.end ?? size;
  let blob = 0;
  let blobStart = 0;
  const body = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      while (blob < blobs.length && position >= blobStart + blobs[blob]!.size) {
        blobStart += blobs[blob]!.size;
        blob++;
      }
      const current = blobs[blob];
      if (current === undefined || position >= last) {
        await end();
        controller.close();
        return;
      }
      const offset = position - blobStart;
      const length = Math.min(CHUNK, current.size - offset, last - position);
      const view = current.openView();
      let chunk: Uint8Array;
      if (view === undefined) chunk = await current.read(offset, length);
      else {
        chunk = view.slice(offset, offset + length);
        current.closeView(view);
      }
      position += length;
      controller.enqueue(chunk);
    },
    cancel: end,
  }, { highWaterMark: 0 });
  return new Response(body, init);
}
