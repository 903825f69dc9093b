/** The lease a caller is handed, without what only the store keeps. */
import type { Lease } from "./lease.ts";
import type { LeaseRecord } from "./lease_store.ts";

/** A stored lease as a caller sees it: the node that granted it stays inside. */
export function publicLease(lease: LeaseRecord): Lease {
  const { id, objectId, access, ttl } = lease;
  return ttl === undefined
    ? { id, objectId, access }
    : { id, objectId, access, ttl, expiresAt: lease.expiresAt! };
}
