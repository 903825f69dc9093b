/**
 * The read-through's HTTP routes: `GET /v1/fetch?url=…` for clients, and
 * `POST /v1/cluster/origin/progress` for the downstream peers of a
 * download this daemon leads. Both need the daemon's token, as every route.
 *
 * @module
 */
import type { Peer } from "../../core/peer.ts";
import { readJson } from "../../transport/http/body.ts";
import type { HttpRoute } from "../../transport/http/server.ts";
import { originRequest } from "../../transport/origin_fetch.ts";
import { CLUSTER_PREFIX } from "../cluster_transport.ts";
import { responseOf } from "./object_response.ts";
import type { ReadThrough } from "./read_through.ts";

/**
 * The prefix of request headers meant for the origin: `Packice-Origin-Authorization: …`
 * reaches the origin as `Authorization: …` (the daemon's own `Authorization` is its token).
 */
export const ORIGIN_HEADER_PREFIX = "packice-origin-";

/**
 * The routes of a read-through over `peer`.
 *
 * `GET /v1/fetch?url=URL[&cache=MODE]` answers with the origin's status and
 * headers (plus `Packice-Object: <id>`) and the stored body.
 */
export function originRoutes(readThrough: ReadThrough, peer: Peer): HttpRoute[] {
  return [
    {
      method: "GET",
      pattern: "/v1/fetch",
      handler: async ({ request, url }) => {
        const headers: [string, string][] = [];
        for (const [name, value] of request.headers) {
          if (name.startsWith(ORIGIN_HEADER_PREFIX)) {
            headers.push([name.slice(ORIGIN_HEADER_PREFIX.length), value]);
          }
        }
        const cache = url.searchParams.get("cache") ?? undefined;
        const reply = await readThrough.fetch(
          originRequest({ url: url.searchParams.get("url") ?? "", headers, cache }),
        );
        return await responseOf(peer, reply);
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
