/**
 * A `Range` on a URL whose object is still arriving here (downloaded from
 * the origin by this daemon, or pulled from the one that does): a 206 of
 * those bytes streamed as the pieces holding them verify, long before the
 * download of the whole object (one per cluster, as ever) ends.
 *
 * @module
 */
import type { Peer } from "../../core/peer.ts";
import type { PartialObject } from "../../transport/http/upload_gate.ts";
import type { OriginReply } from "../../transport/origin_fetch.ts";
import { StoreUnavailableError } from "../../core/errors.ts";
import { responseOf } from "./object_response.ts";
import { replyOf } from "./origin_meta.ts";
import { rangeAnswer } from "./range_answer.ts";

/** A peer that lends the verified bytes of objects arriving here (`ClusterPeer`). */
interface PartialReads {
  partial(id: string): PartialObject | undefined;
}

/** How often an arriving object's next bytes (or the object itself) are looked for, in ms. */
const POLL_MS = 10;
/** Bytes per chunk of a streamed span: a piece or two, so each is sent once they verify. */
const CHUNK = 64 << 10;

/**
 * The answer to `request` for the object `id` that `fetching` reads
 * through: a 206 from the object while it arrives when `early` (a cache
 * mode that a download under way answers), `request` is a GET of one span
 * and the object starts arriving before `fetching` settles; else (see
 * `responseOf`) the response `fetching` settles to.
 */
export async function arrivingResponse(
  peer: Peer,
  id: string,
  fetching: Promise<OriginReply>,
  request: Request,
  early: boolean,
): Promise<Response> {
  const reads = typeof (peer as Partial<PartialReads>).partial === "function"
    ? peer as Peer & PartialReads
    : undefined;
  let settled = false;
  const done = fetching.then(() => settled = true, () => settled = true);
  if (early && reads !== undefined && request.method === "GET" && request.headers.has("range")) {
    while (!settled) {
      const early = await earlyResponse(peer, reads, id, fetching, request);
      if (early !== undefined) return early;
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, POLL_MS))]);
    }
  }
  return await responseOf(peer, await fetching, request.method, request.headers);
}

/** The early answer, once `id` is arriving with its head known; undefined before, or for a whole. */
async function earlyResponse(
  peer: Peer,
  reads: PartialReads,
  id: string,
  fetching: Promise<OriginReply>,
  request: Request,
): Promise<Response | undefined> {
  const partial = reads.partial(id);
  if (partial === undefined) return undefined;
  const info = await peer.stat(id).catch(() => undefined);
  if (info?.state !== "CREATING" || info.size !== partial.size) return undefined;
  let reply: OriginReply;
  try {
    reply = replyOf(id, info.meta);
  } catch {
    return undefined;
  }
  const headers = new Headers(reply.headers as [string, string][]);
  headers.set("packice-object", id);
  headers.set("content-length", String(partial.size));
  const head = { status: reply.status, statusText: reply.statusText, headers };
  const answer = rangeAnswer("GET", request.headers, head, partial.size);
  // The whole object: answered once stored, as without a Range.
  if (answer === undefined) return undefined;
  if (answer.range === undefined) return new Response(null, answer.head);
  const { start, end } = answer.range;
  const version = headers.get("etag") ?? headers.get("last-modified");
  let position = start;
  let cancelled = false;
  /** The rest of the span from the stored object, once it has no more arriving bytes to lend. */
  let rest: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const body = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      while (!cancelled && position < end) {
        if (rest !== undefined) {
          const next = await rest.read();
          if (next.done) break;
          position += next.value.length;
          controller.enqueue(next.value);
          return;
        }
        const arriving = reads.partial(id);
        if (arriving === undefined) {
          rest = await storedRest(peer, id, version, await fetching, position, end);
          continue;
        }
        const chunk = verified(arriving, position, end);
        if (chunk !== undefined) {
          position += chunk.length;
          controller.enqueue(chunk);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      controller.close();
    },
    cancel: async (reason) => {
      cancelled = true;
      await rest?.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return new Response(body, answer.head);
}

/**
 * The verified bytes from `start` on (at most {@link CHUNK}, up to `end`):
 * the longest run whose length halves down from it, so that a span is sent
 * up to the first piece not verified yet.
 */
function verified(partial: PartialObject, start: number, end: number): Uint8Array | undefined {
  for (let length = Math.min(CHUNK, end - start); length >= 1; length = Math.floor(length / 2)) {
    const chunk = partial.read(start, start + length);
    if (chunk !== undefined) return chunk;
  }
  return undefined;
}

/**
 * Bytes `start` to `end` of the object `reply` names, sealed now, when it
 * is the version whose first bytes were sent.
 *
 * @throws {StoreUnavailableError} When another version (or none) was stored.
 */
async function storedRest(
  peer: Peer,
  id: string,
  version: string | null,
  reply: OriginReply,
  start: number,
  end: number,
): Promise<ReadableStreamDefaultReader<Uint8Array>> {
  const headers = new Headers(reply.headers as [string, string][]);
  if (reply.id !== id || (headers.get("etag") ?? headers.get("last-modified")) !== version) {
    throw new StoreUnavailableError(
      `The download of ${id} ended with another version than the one being sent: ask again`,
    );
  }
  const response = await responseOf(
    peer,
    reply,
    "GET",
    new Headers({ range: `bytes=${start}-${end - 1}` }),
  );
  if (response.status !== 206) {
    await response.body?.cancel();
    throw new StoreUnavailableError(`The stored object ${id} does not hold the span being sent`);
  }
  return response.body!.getReader();
}
