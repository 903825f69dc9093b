/**
 * `client.fetch`: a URL read through Packice. A daemon (Unix socket or
 * HTTP) does the trip to the origin, one download per cluster; a peer in
 * this process gets a read-through of its own.
 *
 * @module
 */
import { NotFoundError } from "../core/errors.ts";
import type { Peer } from "../core/peer.ts";
import {
  type CacheMode,
  offersOrigin,
  type OriginReply,
  type OriginRequest,
  originRequest,
} from "../transport/origin_fetch.ts";
import { RESPONSE_URL_HEADER } from "../p2p/origin/object_response.ts";
import type { ReadThrough } from "../p2p/origin/read_through.ts";
import type { ObjectHandle } from "./object_handle.ts";
import { rangeResponse } from "./range_response.ts";

/** A peer that answers `GET /v1/fetch` itself (`HttpPeer`). */
interface FetchThrough {
  fetchThrough(request: OriginRequest, answer?: Headers): Promise<Response>;
}

/** Request headers about the answer (its span), not the origin: the daemon's or this client's. */
const ANSWER_HEADERS = ["range", "if-range"];

/** Statuses whose responses have no body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** Read-throughs of in-process peers, one per peer. */
const local = new WeakMap<Peer, ReadThrough>();

/**
 * Reads `input` through `peer`; `get` opens the object a reply names.
 *
 * @throws {TypeError} For a request other than GET, or a miss with `only-if-cached`.
 */
export async function fetchThrough(
  peer: Peer,
  get: (id: string) => Promise<ObjectHandle>,
  input: RequestInfo | URL,
  init?: RequestInit,
): Promise<Response> {
  const request = new Request(input, withoutCacheMode(init));
  if (request.method !== "GET") {
    throw new TypeError(`Cannot fetch ${request.method} ${request.url}: only GET reads through`);
  }
  await request.body?.cancel();
  const asked = originRequest({
    url: request.url,
    headers: [...request.headers],
    ...(init?.cache === undefined ? {} : { cache: init.cache as CacheMode }),
  });
  let reply: OriginReply;
  try {
    if (typeof (peer as Partial<FetchThrough>).fetchThrough === "function") {
      const answer = new Headers();
      for (const name of ANSWER_HEADERS) {
        const value = request.headers.get(name);
        if (value !== null) answer.set(name, value);
      }
      const response = await (peer as Peer & FetchThrough).fetchThrough(asked, answer);
      return withUrl(response, response.headers.get(RESPONSE_URL_HEADER) ?? asked.url);
    }
    if (offersOrigin(peer)) reply = await peer.fetchOrigin(asked);
    else {
      let readThrough = local.get(peer);
      if (readThrough === undefined) {
        // Loaded only here: a client of a daemon never needs it.
        const { ReadThrough } = await import("../p2p/origin/read_through.ts");
        readThrough = local.get(peer) ?? new ReadThrough({ peer });
        local.set(peer, readThrough);
      }
      reply = await readThrough.fetch(asked);
    }
  } catch (error) {
    if (error instanceof NotFoundError && asked.cache === "only-if-cached") {
      throw new TypeError(`Cannot fetch ${asked.url}: not cached and cache is "only-if-cached"`);
    }
    throw error;
  }
  const head = {
    status: reply.status,
    statusText: reply.statusText,
    headers: new Headers(reply.headers as [string, string][]),
  };
  head.headers.set("packice-object", reply.id);
  if (reply.url !== undefined) head.headers.set(RESPONSE_URL_HEADER, reply.url);
  const url = reply.url ?? asked.url;
  if (NULL_BODY.has(reply.status)) return withUrl(new Response(null, head), url);
  const handle = await get(reply.id);
  if (reply.status === 200) head.headers.set("accept-ranges", "bytes");
  const partial = rangeResponse(request, head, handle);
  if (partial !== undefined) return withUrl(await partial, url);
  head.headers.set("content-length", String(handle.size));
  return withUrl(new Response(handle.stream(), head), url);
}

/**
 * `response` with the URL it came from, as `fetch` gives it: the origin's
 * last after redirects (`redirected` then true), else the one asked for.
 */
function withUrl(response: Response, url: string): Response {
  if (response.url !== url) Object.defineProperty(response, "url", { value: url });
  const redirected = response.headers.has(RESPONSE_URL_HEADER);
  if (response.redirected !== redirected) {
    Object.defineProperty(response, "redirected", { value: redirected });
  }
  return response;
}

function withoutCacheMode(init: RequestInit | undefined): RequestInit | undefined {
  if (init?.cache === undefined) return init;
  const { cache: _, ...rest } = init;
  return rest;
}
