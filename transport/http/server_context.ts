/**
 * What the route handlers of one HTTP server share: the peer, the leases
 * its clients hold, uploads in progress, and the server's limits.
 *
 * @module
 */
import type { Peer } from "../../core/peer.ts";
import { metaTooLarge } from "./errors.ts";
import type { LeaseTable } from "./lease_table.ts";
import type { NativeGet } from "./native_get.ts";
import type { UploadGate } from "./upload_gate.ts";

/** JSON bodies of control requests may hold metadata and this much more. */
export const JSON_OVERHEAD = 4096;

/** One server's state, as its handlers see it. */
export interface ServerContext {
  /** The peer served. */
  readonly peer: Peer;
  /** Leases HTTP clients hold, renewed by their requests. */
  readonly leases: LeaseTable;
  /** Object bodies sent and their limits. */
  readonly uploads: UploadGate;
  /** TTL of leases clients take without one, and of a one-request upload's lease. */
  readonly leaseTtl: number;
  /** The largest upload one request may carry. */
  readonly maxBodySize: number;
  /** The largest metadata, in bytes of JSON. */
  readonly maxMetaSize: number;
  /** Reports an unexpected failure. */
  readonly onError: (error: unknown) => void;
  /** The native GET listener, once it runs (`fastGet`), to which GETs offer the objects they read. */
  nativeGet: NativeGet | undefined;
}

/**
 * Throws unless metadata of `bytes` bytes is within the server's limit.
 *
 * @throws {HttpStatusError} 413 with code `INVALID_ARGUMENT`.
 */
export function checkMetaSize(server: ServerContext, bytes: number): void {
  if (bytes > server.maxMetaSize) {
    throw metaTooLarge(`Metadata too large: ${bytes} bytes, the limit is ${server.maxMetaSize}`);
  }
}
