/**
 * The cluster's HTTP routes, added to the daemon's HTTP server (and so
 * behind its bearer token): `GET /v1/cluster/members`, and `POST
 * /v1/cluster/<kind>` and `/v1/cluster/directory/<kind>` for the gossip and
 * directory messages.
 *
 * @module
 */
import { readJson } from "../transport/http/body.ts";
import type { HttpRoute } from "../transport/http/server.ts";
import { CLUSTER_PREFIX, type ClusterHandler } from "./cluster_transport.ts";
import type { Members } from "./members.ts";

/** The largest cluster message body: a full state exchange of many members. */
export const MAX_CLUSTER_BODY = 16 * 1024 * 1024;

/**
 * The routes of a cluster member.
 *
 * @param members Listed by `GET /v1/cluster/members`.
 * @param handle Answers `POST /v1/cluster/<path>` with the parsed JSON body.
 */
export function clusterRoutes(members: Members, handle: ClusterHandler): HttpRoute[] {
  const post = (prefix: string): HttpRoute["handler"] => async ({ request, params }) =>
    Response.json(
      await handle(`${prefix}${params.kind}`, await readJson(request, MAX_CLUSTER_BODY)),
    );
  return [
    {
      method: "GET",
      pattern: `${CLUSTER_PREFIX}/members`,
      handler: () => Response.json({ self: members.self, members: members.list() }),
    },
    { method: "POST", pattern: `${CLUSTER_PREFIX}/:kind`, handler: post("") },
    { method: "POST", pattern: `${CLUSTER_PREFIX}/directory/:kind`, handler: post("directory/") },
  ];
}
