/**
 * The read-through's HTTP routes: `GET /v1/fetch?url=…` for clients,
 * `POST /v1/cluster/origin/progress` for the downstream peers of a
 * download this daemon leads, and `GET /v1/cluster/origin/spool/:id` for
 * the pieces of a body of no stated length spooled here. All need the
 * daemon's token, as every route.
 *
 * @module
 */
import { InvalidArgumentError } from "../../core/errors.ts";
import type { Peer } from "../../core/peer.ts";
import { readJson } from "../../transport/http/body.ts";
import type { HttpRoute } from "../../transport/http/server.ts";
import { originRequest } from "../../transport/origin_fetch.ts";
import { CLUSTER_PREFIX } from "../cluster_transport.ts";
import { arrivingResponse } from "./arriving_response.ts";
import { originId } from "./origin_id.ts";
import type { ReadThrough } from "./read_through.ts";
import { SPOOL_PIECE } from "./spool.ts";

/**
 * The prefix of request headers meant for the origin: `Packice-Origin-Authorization: …`
 * reaches the origin as `Authorization: …` (the daemon's own `Authorization` is its token).
 */
export const ORIGIN_HEADER_PREFIX = "packice-origin-";

/**
 * The routes of a read-through over `peer`.
 *
 * `GET /v1/fetch?url=URL[&cache=MODE]` answers with the origin's status and
 * headers (plus `Packice-Object: <id>`, and `Packice-Response-Url` after a
 * redirect) and the stored body; a `Range` of one span gets a 206 of those
 * bytes from it (see `rangeAnswer`), from the object as it arrives when it
 * is on its way (see `arrivingResponse`). `HEAD` answers the head alone.
 */
export function originRoutes(readThrough: ReadThrough, peer: Peer): HttpRoute[] {
  const fetchRoute: HttpRoute["handler"] = async ({ request, url }) => {
    const headers: [string, string][] = [];
    for (const [name, value] of request.headers) {
      if (name.startsWith(ORIGIN_HEADER_PREFIX)) {
        headers.push([name.slice(ORIGIN_HEADER_PREFIX.length), value]);
      }
    }
    const cache = url.searchParams.get("cache") ?? undefined;
    const asked = originRequest({ url: url.searchParams.get("url") ?? "", headers, cache });
    // Not stored, or stored only: a download under way is not the answer.
    const early = cache !== "no-store" && cache !== "only-if-cached";
    const fetching = readThrough.fetch(asked);
    return await arrivingResponse(peer, originId(asked.url), fetching, request, early);
  };
  return [
    { method: "GET", pattern: "/v1/fetch", handler: fetchRoute },
    { method: "HEAD", pattern: "/v1/fetch", handler: fetchRoute },
    {
      method: "GET",
      pattern: `${CLUSTER_PREFIX}/origin/spool/:id`,
      handler: async ({ request, params, info, uploads, sendFile }) => {
        const range = /^bytes=(\d+)-(\d+)$/.exec(request.headers.get("range") ?? "");
        if (range === null) {
          throw new InvalidArgumentError("Cannot read a spool: one Range of bytes=a-b is needed");
        }
        const start = Number(range[1]);
        const end = Number(range[2]) + 1;
        if (end <= start || end - start > SPOOL_PIECE) {
          throw new InvalidArgumentError(
            `Cannot read a spool: a range of 1 to ${SPOOL_PIECE} bytes is needed`,
          );
        }
        // Sent as a relay sends a piece: an upload slot, the upload rate.
        const free = await uploads.enter(
          `spool:${params.id!}`,
          { local: true, range: null, relay: true },
          request.signal,
        );
        // Through the native GET listener (the piece port), it sends them from the file.
        const file = readThrough.spoolFile(params.id!, start, end);
        let sent;
        try {
          sent = file && sendFile(file.fd, file.size, { start, end: file.end }, {
            "content-type": "application/octet-stream",
          });
        } catch (error) {
          free?.(false);
          throw error;
        }
        if (sent !== undefined) {
          if (free !== undefined) sent.done.then(free);
          return sent.response;
        }
        let read;
        try {
          read = await readThrough.spoolRange(params.id!, start, end);
        } catch (error) {
          free?.(false);
          throw error;
        }
        if (read === undefined) {
          free?.(false);
          return new Response(null, { status: 503 });
        }
        const { bytes, size } = read;
        if (free !== undefined) info.completed.then(() => free(), () => free());
        return new Response(uploads.pace(bytes), {
          status: 206,
          headers: {
            "content-length": String(bytes.length),
            // As the listener says it: `*` while the body's length is unknown (RFC 9110).
            "content-range": `bytes ${start}-${start + bytes.length - 1}/${size ?? "*"}`,
          },
        });
      },
    },
    {
      method: "POST",
      pattern: `${CLUSTER_PREFIX}/origin/progress`,
      handler: async ({ request }) =>
        Response.json(readThrough.progress(await readJson(request, 1 << 20))),
    },
  ];
}
