/**
 * The lifecycle rules of objects and leases, in one place. Every lease store
 * applies these checks inside its atomic steps; the Redis store's scripts
 * mirror them, and one conformance suite runs against every store.
 *
 * @module
 */
import {
  AlreadySealedError,
  LeaseExpiredError,
  NotFoundError,
  NotSealedError,
  WrongAccessError,
} from "./errors.ts";
import { Access } from "./lease.ts";
import type { LeaseRecord } from "./lease_store.ts";
import type { ObjectInfo } from "./object.ts";

/** READ only of sealed objects; READ and WRITE only of existing ones. */
export function checkGrant(
  objectId: string,
  info: ObjectInfo | undefined,
  access: Access,
): ObjectInfo {
  if (access === Access.CREATE) {
    throw new WrongAccessError(`Cannot grant CREATE on ${objectId}: use create`);
  }
  if (info === undefined) throw new NotFoundError(`No object: ${objectId}`);
  if (access === Access.READ && info.state !== "SEALED") {
    throw new NotSealedError(`Cannot read object ${objectId}: not sealed`);
  }
  return info;
}

/** What the seal and write rules need of a lease: a lease store's record, or a transport's view of one. */
export type LeaseAccess = Pick<LeaseRecord, "access" | "objectId">;

/** Seal only with a CREATE lease, and only once. */
export function checkSeal(lease: LeaseRecord, info: ObjectInfo | undefined): ObjectInfo {
  checkSealable(lease, info?.state === "SEALED");
  if (info === undefined) throw new NotFoundError(`No object: ${lease.objectId}`);
  return info;
}

/**
 * The seal rule where the caller holds the object and knows whether it is sealed.
 *
 * @param sealed Whether the object is sealed, or a seal of it is under way.
 */
export function checkSealable(lease: LeaseAccess, sealed: boolean): void {
  if (lease.access !== Access.CREATE) {
    throw new WrongAccessError(
      `Cannot seal object ${lease.objectId}: lease is ${lease.access}, not CREATE`,
    );
  }
  if (sealed) throw new AlreadySealedError(`Cannot seal object ${lease.objectId}: already sealed`);
}

/** Discard needs CREATE or WRITE. */
export function checkDiscard(lease: LeaseRecord): void {
  if (lease.access === Access.READ) {
    throw new WrongAccessError(`Cannot discard object ${lease.objectId}: lease is READ`);
  }
}

/**
 * Writes need CREATE or WRITE on an object not yet sealed.
 *
 * @param sealed Whether the object is sealed, or a seal of it is under way.
 */
export function checkWrite(lease: LeaseAccess, sealed: boolean): void {
  if (lease.access === Access.READ) {
    throw new WrongAccessError(`Cannot write object ${lease.objectId}: lease is READ`);
  }
  if (sealed) throw new AlreadySealedError(`Cannot write object ${lease.objectId}: sealed`);
}

/** A lease is live until its expiry. */
export function checkLive(lease: LeaseRecord, now: number): LeaseRecord {
  if (lease.expiresAt !== undefined && lease.expiresAt <= now) {
    throw new LeaseExpiredError(`Lease ${lease.id} on ${lease.objectId} has expired`);
  }
  return lease;
}

/**
 * The deadline of an object given a time to live at create: the TTL counts
 * from the create, whether the object is sealed by then or not, as a Redis
 * `SET key value PX ttl` does. At its deadline the object leaves lookups as a
 * delete does (an unfinished one is discarded); readers that hold a lease on
 * it keep its bytes until they release it. `Client.put` and `Client.create`
 * give their `ttl` both to the object and to the CREATE lease.
 *
 * @param createdAt When the object was created, in epoch milliseconds.
 * @param ttl Its time to live in milliseconds; undefined for an object that stays.
 * @returns The deadline in epoch milliseconds, or undefined.
 */
export function objectDeadline(createdAt: number, ttl: number | undefined): number | undefined {
  return ttl === undefined ? undefined : createdAt + ttl;
}

/** An object with a deadline has expired at it: lookups no longer find it. */
export function isExpired(info: ObjectInfo, now: number): boolean {
  return info.expiresAt !== undefined && info.expiresAt <= now;
}

/** Ending a CREATE lease of an unsealed object abandons the object. */
export function endRemovesObject(lease: LeaseRecord, info: ObjectInfo | undefined): boolean {
  return lease.access === Access.CREATE && info !== undefined && info.state === "CREATING";
}
