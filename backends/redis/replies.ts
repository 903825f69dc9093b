/** What the Redis scripts answer, and the lease ends and errors built from it. */
import { InternalError, LeaseExpiredError } from "../../core/errors.ts";
import type { LeaseEnd, LeaseRecord } from "../../core/lease_store.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { decodeObject } from "./codec.ts";
import type { Script } from "./lua.ts";

/** What most scripts return: a status, then the fields of the object they saw or removed. */
export type Reply = [status: string, ...fields: string[]];

/**
 * What the `uses` script answers about one entry: a status alone, or a
 * {@link Reply} when it has fields to send.
 */
export type UseReply = string | Reply;

/** The status of a reply. */
export function statusOf(reply: UseReply): string {
  return typeof reply === "string" ? reply : reply[0];
}

/** The object whose fields follow the status of a reply; undefined when none do. */
export function objectOf(id: string, reply: UseReply): ObjectInfo | undefined {
  return typeof reply === "string" ? undefined : decodeObject(id, reply, 1);
}

/** Whether a lease has a TTL, as the scripts take it: they look for it in one place. */
export function timed(lease: LeaseRecord): string {
  return lease.ttl === undefined ? "0" : "1";
}

/** Whether Redis lists `node` as a holder of the object. */
export function listed(info: ObjectInfo, node: string): boolean {
  for (const holder of info.holders ?? []) if (holder.node === node) return true;
  return false;
}

export function describeContent(info: ObjectInfo): string {
  return `${info.size} bytes, digest ${info.digest ?? "unknown"}`;
}

export function ended(lease: LeaseRecord, removed: ObjectInfo | undefined): LeaseEnd {
  return removed === undefined ? { lease } : { lease, removed };
}

/** A live lease that Redis no longer has. */
export function gone(lease: LeaseRecord): LeaseExpiredError {
  return new LeaseExpiredError(`Lease ${lease.id} on ${lease.objectId} is no longer in the store`);
}

export function disagreement(script: Script, status: string): InternalError {
  return new InternalError(
    `Redis script ${script.name} answered ${status}, which the lifecycle rules do not explain`,
  );
}
