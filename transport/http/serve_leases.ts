/**
 * The lease routes of the HTTP server: `/v1/leases` and the blob reads and
 * writes under a lease, each a call on the peer with the lease table kept
 * in step.
 *
 * @module
 */
import { ProtocolError } from "../../core/errors.ts";
import { isPlainObject } from "../../core/plain_object.ts";
import { checkRange } from "../../core/range.ts";
import {
  acquireRequest,
  discardRequest,
  releaseRequest,
  renewRequest,
  sealRequest,
} from "../../core/requests.ts";
import { validateSize } from "../../core/validate.ts";
import { blobStream, readJson, receive, uploadLength } from "./body.ts";
import { parseRange } from "./conditional.ts";
import { sentRange } from "./object_headers.ts";
import type { RouteContext } from "./router.ts";
import { checkMetaSize, JSON_OVERHEAD, type ServerContext } from "./server_context.ts";

const encoder = new TextEncoder();

/** POST /v1/leases: every lease an HTTP client holds has a TTL. */
export async function acquire(server: ServerContext, { request }: RouteContext): Promise<Response> {
  const body = jsonObject(await readJson(request, server.maxMetaSize + JSON_OVERHEAD));
  const { objectId, access, ttl, objectTtl, size, meta, local } = acquireRequest(body);
  if (meta !== undefined) checkMetaSize(server, encoder.encode(JSON.stringify(meta)).length);
  const acquired = await server.peer.acquire(objectId, access, {
    ttl: ttl ?? server.leaseTtl,
    ...(objectTtl === undefined ? {} : { objectTtl }),
    ...(size === undefined ? {} : { size }),
    ...(meta === undefined ? {} : { meta }),
    ...(local === true ? { local } : {}),
  });
  server.leases.add(acquired);
  return Response.json({ lease: acquired.lease, object: acquired.object }, { status: 201 });
}

/** DELETE /v1/leases/:lease. */
export async function release(server: ServerContext, { params }: RouteContext): Promise<Response> {
  const leaseId = releaseRequest(params.lease);
  await server.peer.release(leaseId);
  server.leases.delete(leaseId);
  return new Response(null, { status: 204 });
}

/** POST /v1/leases/:lease/seal. */
export async function seal(server: ServerContext, { params }: RouteContext): Promise<Response> {
  return Response.json(await server.peer.seal(sealRequest(params.lease)));
}

/** POST /v1/leases/:lease/discard. */
export async function discard(server: ServerContext, { params }: RouteContext): Promise<Response> {
  const leaseId = discardRequest(params.lease);
  await server.peer.discard(leaseId);
  server.leases.delete(leaseId);
  return new Response(null, { status: 204 });
}

/** POST /v1/leases/:lease/renew. */
export async function renew(
  server: ServerContext,
  { request, params }: RouteContext,
): Promise<Response> {
  const body = jsonObject(await readJson(request, JSON_OVERHEAD));
  const { leaseId, ttl } = renewRequest({ ...body, leaseId: params.lease });
  const lease = await server.peer.renew(leaseId, ttl);
  server.leases.renewed(lease);
  return Response.json(lease);
}

/** GET /v1/leases/:lease/blobs/:index: copies, as the client's lease may end mid-response. */
export async function readBlob(
  server: ServerContext,
  { request, params }: RouteContext,
): Promise<Response> {
  const blob = server.leases.blob(params.lease!, params.index!);
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "content-length": String(blob.size),
  };
  const range = parseRange(request.headers.get("range"), blob.size);
  const { bytes, status } = sentRange(range, blob.size, headers);
  if (bytes.end === bytes.start) return new Response(null, { status, headers });
  return new Response(await blobStream([blob], bytes, false), { status, headers });
}

/** PATCH /v1/leases/:lease/blobs/:index?offset=N: writes the body into the blob. */
export async function writeBlob(
  server: ServerContext,
  { request, url, params }: RouteContext,
): Promise<Response> {
  const blob = server.leases.blob(params.lease!, params.index!);
  const offsetText = url.searchParams.get("offset") ?? "0";
  const offset = validateSize(/^\d+$/.test(offsetText) ? Number(offsetText) : -1, "offset");
  const length = uploadLength(request, server.maxBodySize);
  checkRange("write", offset, length, blob.size, "the blob");
  // An empty write checks the lease allows writing before any byte is read.
  await blob.write(offset, new Uint8Array(0));
  await receive(request.body, length, (chunk, at) => blob.write(offset + at, chunk));
  return new Response(null, { status: 204 });
}

/** A JSON body that must be an object. */
function jsonObject(value: unknown): Record<string, unknown> {
  if (!isPlainObject(value)) throw new ProtocolError("Malformed JSON body: expected an object");
  return value;
}
