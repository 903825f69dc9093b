/**
 * The list route, `GET /objects`: with `?limit=` or `?after=`, one page
 * (JSON `ListPage`, see `core/list_page.ts`); bare, the whole list as a
 * JSON array streamed a page at a time, so that neither the server nor a
 * client that reads the body as it comes holds it whole.
 *
 * @module
 */
import { type ListPage, listPageOf, type ListPageOptions } from "../../core/list_page.ts";
import type { Peer } from "../../core/peer.ts";

const encoder = new TextEncoder();

/** The response to `GET /objects` of `url` from `peer`. */
export async function listObjects(peer: Peer, url: URL): Promise<Response> {
  const after = url.searchParams.get("after");
  const limit = url.searchParams.get("limit");
  if (after === null && limit === null) return streamWhole(peer, await listPageOf(peer));
  const options: { after?: string; limit?: unknown } = {};
  if (after !== null) options.after = after;
  // Not a number: left as text, for the typed error to show it.
  if (limit !== null) options.limit = /^[0-9]{1,16}$/.test(limit) ? Number(limit) : limit;
  return Response.json(await listPageOf(peer, options as ListPageOptions));
}

/** The JSON array of every object, from its first page on. */
function streamWhole(peer: Peer, first: ListPage): Response {
  let page: ListPage | undefined = first;
  let opened = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (page === undefined) {
        controller.enqueue(encoder.encode("]"));
        controller.close();
        return;
      }
      const text = JSON.stringify(page.objects).slice(1, -1);
      const head = opened ? (text.length > 0 ? "," : "") : "[";
      opened = true;
      controller.enqueue(encoder.encode(head + text));
      page = page.next === undefined ? undefined : await listPageOf(peer, { after: page.next });
    },
  });
  return new Response(body, { headers: { "content-type": "application/json" } });
}
