/**
 * The wire format of the HTTP transport, shared by the server and
 * {@link HttpPeer}: paths, header names, request bodies and the error body.
 *
 * Routes, all under `/v1` except the two operator endpoints:
 *
 * | Method     | Path                              | What it does                                        |
 * | ---------- | --------------------------------- | --------------------------------------------------- |
 * | GET        | `/healthz`                        | `{"status":"ok"}` without auth                      |
 * | GET        | `/metrics`                        | Prometheus text                                     |
 * | GET        | `/v1/stats`                       | the peer's counts                                   |
 * | GET        | `/v1/status`                      | the daemon's `DaemonStatus` (404 from a bare server) |
 * | GET        | `/v1/objects`                     | every object, as JSON                               |
 * | POST       | `/v1/objects`                     | create and seal an object under a fresh id          |
 * | PUT        | `/v1/objects/:id`                 | create and seal in one request; `?ttl=` its TTL     |
 * | GET, HEAD  | `/v1/objects/:id`                 | the bytes: `Range`, `ETag`, `If-None-Match`         |
 * | DELETE     | `/v1/objects/:id`                 | delete                                              |
 * | GET        | `/v1/objects/:id/info`            | what is known of an object                          |
 * | POST       | `/v1/leases`                      | acquire: `{objectId?, access, ttl?, size?, meta?}`  |
 * | DELETE     | `/v1/leases/:lease`               | release                                             |
 * | POST       | `/v1/leases/:lease/seal`          | seal                                                |
 * | POST       | `/v1/leases/:lease/discard`       | discard                                             |
 * | POST       | `/v1/leases/:lease/renew`         | renew: `{ttl?}`                                     |
 * | GET        | `/v1/leases/:lease/blobs/:index`  | read a blob under a lease: `Range`                  |
 * | PATCH      | `/v1/leases/:lease/blobs/:index`  | write into a blob at `?offset=N`                    |
 *
 * @module
 */
import type { AcquireRequest } from "../../core/requests.ts";
import type { ErrorCode } from "../../core/errors.ts";

/** The version prefix of every API path. */
export const API_PREFIX = "/v1";

/** Header names of the transport (lower case, as `Headers` gives them). */
export const Header = {
  /** Metadata of a new object, as JSON with non-ASCII characters escaped. */
  META: "packice-meta",
  /** Size of an upload whose body is streamed without `Content-Length`. */
  SIZE: "packice-size",
  /** The TTL in milliseconds of an object uploaded in one request (or `?ttl=`); see `objectDeadline`. */
  TTL: "packice-ttl",
  /** `CREATING` on the bytes of an object still arriving, sent as its pieces verify. */
  STATE: "packice-state",
} as const;

/** The metadata key whose string value becomes the `Content-Type` of an object's bytes. */
export const CONTENT_TYPE_KEY = "content-type";

/** The body of `POST /v1/leases`: the fields of an ACQUIRE, as every transport carries them. */
export type AcquireBody = AcquireRequest;

/** The body of `POST /v1/leases/:lease/renew`. */
export interface RenewBody {
  /** A new TTL in milliseconds; the lease's own when absent. */
  readonly ttl?: number;
}

/** The body of every error response. */
export interface ErrorBody {
  /** The stable code and the message. */
  readonly error: { readonly code: ErrorCode; readonly message: string };
}

/** The path of an object's bytes. */
export function objectPath(id: string): string {
  return `${API_PREFIX}/objects/${encodeURIComponent(id)}`;
}

/** The path of a lease, or of an action or blob under it. */
export function leasePath(leaseId: string, ...rest: Array<string | number>): string {
  const tail = rest.map((part) => `/${encodeURIComponent(part)}`).join("");
  return `${API_PREFIX}/leases/${encodeURIComponent(leaseId)}${tail}`;
}

/**
 * JSON text with every character outside printable ASCII escaped, so it can
 * travel in a header value.
 */
export function headerJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[^\x20-\x7e]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
