/**
 * A stored origin response as a `Response`: the origin's status and
 * headers, and the object's bytes streamed under a READ lease that ends
 * when the body is read or cancelled.
 *
 * @module
 */
import { Access } from "../../core/lease.ts";
import type { Peer } from "../../core/peer.ts";
import type { OriginReply } from "../../transport/origin_fetch.ts";

/** Bytes per chunk of a streamed body. */
const CHUNK = 1 << 20;

/** Statuses whose responses have no body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** The response `reply` describes, its body read from the object it names. */
export async function responseOf(peer: Peer, reply: OriginReply): Promise<Response> {
  const headers = new Headers(reply.headers as [string, string][]);
  headers.set("packice-object", reply.id);
  const init = { status: reply.status, statusText: reply.statusText, headers };
  if (NULL_BODY.has(reply.status)) return new Response(null, init);
  const { lease, blobs } = await peer.acquire(reply.id, Access.READ);
  let blob = 0;
  let offset = 0;
  let ended = false;
  const end = async () => {
    if (ended) return;
    ended = true;
    await peer.release(lease.id).catch(() => {});
  };
  let size = 0;
  for (const each of blobs) size += each.size;
  headers.set("content-length", String(size));
  const body = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      while (blob < blobs.length && offset >= blobs[blob]!.size) {
        blob++;
        offset = 0;
      }
      const current = blobs[blob];
      if (current === undefined) {
        await end();
        controller.close();
        return;
      }
      const length = Math.min(CHUNK, current.size - offset);
      const view = current.openView();
      let chunk: Uint8Array;
      if (view === undefined) chunk = await current.read(offset, length);
      else {
        chunk = view.slice(offset, offset + length);
        current.closeView(view);
      }
      offset += length;
      controller.enqueue(chunk);
    },
    cancel: end,
  }, { highWaterMark: 0 });
  return new Response(body, init);
}
