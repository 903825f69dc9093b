/**
 * The HTTP transport: {@link serveHttp} serves a peer to other hosts, and
 * {@link HttpPeer} is that peer on the client's side, behind the same
 * {@link Peer} API. `connect("http://host:port", { token })` uses it, and
 * `packice serve --http 127.0.0.1:7070` runs the server beside the Unix socket.
 *
 * What operators need to know:
 *
 * - Routes are listed in `protocol.ts`: JSON control under `/v1`, object bytes
 *   as HTTP bodies streamed both ways. `PUT /v1/objects/:id` stores and seals
 *   an object in one request (`Content-Length`, or `Packice-Size` for a
 *   chunked body; metadata as JSON in `Packice-Meta`; its TTL as `?ttl=` or
 *   `Packice-TTL`). A chunked body of no declared length is gathered in a
 *   memfd, not in memory, before it becomes the object. A body cut off or of
 *   the wrong length discards the object: nothing half-written is sealed.
 * - `GET /v1/objects/:id` answers `Range` (one range: 206, or 416; several:
 *   the whole object, 200), `HEAD`,
 *   an `ETag` from the content digest (computed on first need, then kept by
 *   the peer), `If-None-Match` (304), and `Content-Type` from
 *   `meta["content-type"]`.
 * - Auth: with a token, every request but `GET /healthz` needs
 *   `Authorization: Bearer <token>`, compared in constant time; a 401 says
 *   `WWW-Authenticate: Bearer realm="packice"`. A server on an
 *   address other than loopback refuses to start without a token.
 * - Leases of HTTP clients always carry a TTL (default 30 s,
 *   `leaseTtl`): an abandoned upload expires and is discarded; `renew` keeps a
 *   long one alive, and {@link HttpPeer} renews its leases by itself.
 * - Limits: `maxBodySize` per upload request (default 4 GiB; 413 above) and
 *   `maxMetaSize` of metadata (default 64 KiB).
 * - Errors are `{ "error": { "code", "message" } }` with the stable codes of
 *   `core/errors.ts`; `errors.ts` maps each code to its status.
 * - `/metrics` (Prometheus text): `packice_objects`, `packice_bytes`,
 *   `packice_capacity_bytes`, `packice_leases`, `packice_hits_total`,
 *   `packice_misses_total`, `packice_evictions_total` (0 unless the peer's
 *   stats count them), `packice_http_requests_total{route,status}` and the
 *   histogram `packice_http_request_duration_seconds{route}` (time to response
 *   headers).
 * - TLS is not served: put a TLS proxy in front for `https://` clients.
 *
 * @example Serve a peer and use it over HTTP
 * ```ts ignore
 * import { connect, MemoryPeer, serveHttp } from "@packice/packice";
 * await using peer = new MemoryPeer();
 * await using server = serveHttp(peer, { port: 0, token: "secret" });
 * await using client = await connect(server.url, { token: "secret" });
 * const id = await client.put("hello", { meta: { "content-type": "text/plain" } });
 * const response = await fetch(`${server.url}/v1/objects/${id}`, {
 *   headers: { authorization: "Bearer secret" },
 * });
 * console.log(await response.text()); // "hello"
 * ```
 *
 * @module
 */
export {
  DEFAULT_LEASE_TTL,
  DEFAULT_MAX_BODY_SIZE,
  type HttpRoute,
  HttpServer,
  type HttpServerOptions,
  serveHttp,
} from "./server.ts";
export { HttpPeer, type HttpPeerOptions } from "./http_peer.ts";
export type { RouteContext, RouteHandler, RouteUploads } from "./router.ts";
export { isLoopback, type ListenAddress, parseListenAddress } from "./address.ts";
export { type ByteBucket, limitStream, type RateClock, Slots, TokenBucket } from "../rate_limit.ts";
export { formatRequest, type HttpRequestEntry } from "./request_log.ts";
export type {
  LentRange,
  PartialHolder,
  PartialObject,
  RelayedPieces,
  RelaySink,
} from "./upload_gate.ts";
