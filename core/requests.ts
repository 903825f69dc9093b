/**
 * The requests a client sends a peer, checked at the edge: one function per
 * operation, shared by every transport, that takes what came off the wire
 * (`unknown`) and returns a typed request, or throws an
 * {@link InvalidArgumentError} that names the field and what it expects.
 * Fields a request does not know are ignored. A transport whose wire names a
 * field otherwise (the Unix socket's ACQUIRE sends `id`, its RENEW `lease`)
 * renames it before the check. LIST and STATS take nothing.
 *
 * Checks of a string or number are a few `typeof` tests: the hot paths of
 * the transports call these without a cost worth measuring. Binary frames
 * (the socket's OPEN, READ and WRITE) decode to fields of the right types by
 * their layout; the peer checks their values.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import { Access } from "./lease.ts";
import { isPlainObject } from "./plain_object.ts";
import { shown } from "./shown.ts";
import {
  type Meta,
  validateAccess,
  validateBlobSizes,
  validateLeaseId,
  validateObjectId,
  validateTtl,
} from "./validate.ts";

/** ACQUIRE, checked. */
export interface AcquireRequest {
  /** The object; absent only for a CREATE that picks a fresh id. */
  readonly objectId?: string;
  /** READ, CREATE or WRITE. */
  readonly access: Access;
  /** Lease TTL in milliseconds. */
  readonly ttl?: number;
  /** CREATE: the object's TTL in milliseconds, from the create (see `objectDeadline`). */
  readonly objectTtl?: number;
  /** The size, or each blob's size; required by CREATE. */
  readonly size?: number | readonly number[];
  /** Metadata, a plain object; its size is the peer's to check. */
  readonly meta?: Meta;
  /** READ in a cluster: this host's copy only (see `AcquireOptions.local`). */
  readonly local?: boolean;
}

/** RENEW, checked. */
export interface RenewRequest {
  /** The lease. */
  readonly leaseId: string;
  /** A new TTL in milliseconds; the lease's own when absent. */
  readonly ttl?: number;
}

/** PUT (create, fill and seal in one step) besides its bytes, checked. */
export interface PutRequest {
  /** The object's id; absent for a fresh one. */
  readonly id?: string;
  /** Metadata, a plain object; its size is the peer's to check. */
  readonly meta?: Meta;
  /** The object's TTL, from the create (see `objectDeadline`), and its CREATE lease's. */
  readonly ttl?: number;
}

/** A PUT of no options, as most small puts are: returned as it is, never copied. */
const NO_PUT_OPTIONS: PutRequest = Object.freeze({});

/**
 * Checks ACQUIRE `{ objectId?, access, ttl?, objectTtl?, size?, meta?, local? }`.
 *
 * @throws {InvalidArgumentError} When it is not an object or a field is wrong.
 */
export function acquireRequest(value: unknown): AcquireRequest {
  const request = requestObject(value, "ACQUIRE");
  const access = validateAccess(request.access);
  const { objectId, ttl, objectTtl, size, meta, local } = request;
  if (local !== undefined && typeof local !== "boolean") {
    throw new InvalidArgumentError(`Invalid local: expected true or false, got ${shown(local)}`);
  }
  if (objectId === undefined && access !== Access.CREATE) {
    throw new InvalidArgumentError(`Invalid object id: ${access} needs one`);
  }
  if (size === undefined && access === Access.CREATE) {
    throw new InvalidArgumentError("Invalid size: CREATE needs one");
  }
  return {
    ...(objectId === undefined ? {} : { objectId: validateObjectId(objectId) }),
    access,
    ...(ttl === undefined ? {} : { ttl: validateTtl(ttl)! }),
    ...(objectTtl === undefined ? {} : { objectTtl: validateTtl(objectTtl)! }),
    ...(size === undefined ? {} : { size: sizeOf(size) }),
    ...(meta === undefined ? {} : { meta: metaOf(meta) }),
    ...(local === true ? { local } : {}),
  };
}

/**
 * Checks the lease id of SEAL: a lease id, as for DISCARD and RELEASE.
 *
 * @throws {InvalidArgumentError} When it is not a lease id.
 */
export const sealRequest: (leaseId: unknown) => string = validateLeaseId;

/** Checks the lease id of DISCARD; see {@link sealRequest}. */
export const discardRequest: (leaseId: unknown) => string = validateLeaseId;

/** Checks the lease id of RELEASE; see {@link sealRequest}. */
export const releaseRequest: (leaseId: unknown) => string = validateLeaseId;

/**
 * Checks RENEW `{ leaseId, ttl? }`.
 *
 * @throws {InvalidArgumentError} When it is not an object or a field is wrong.
 */
export function renewRequest(value: unknown): RenewRequest {
  const request = requestObject(value, "RENEW");
  const leaseId = validateLeaseId(request.leaseId);
  const ttl = validateTtl(request.ttl);
  return ttl === undefined ? { leaseId } : { leaseId, ttl };
}

/**
 * Checks the object id of GET, a READ lease on an object: an object id, as
 * for STAT, HAS and DELETE. (The socket's OPEN, the same for `get`, decodes
 * its id as a string; the peer checks it, once per object it holds.)
 *
 * @throws {InvalidArgumentError} When it is not a valid object id.
 */
export const getRequest: (objectId: unknown) => string = validateObjectId;

/** Checks the object id of STAT; see {@link getRequest}. */
export const statRequest: (objectId: unknown) => string = validateObjectId;

/** Checks the object id of HAS; see {@link getRequest}. */
export const hasRequest: (objectId: unknown) => string = validateObjectId;

/** Checks the object id of DELETE; see {@link getRequest}. */
export const deleteRequest: (objectId: unknown) => string = validateObjectId;

/**
 * Checks PUT `{ id?, meta?, ttl? }`; `{}` comes back as one shared object.
 *
 * @throws {InvalidArgumentError} When it is not an object or a field is wrong.
 */
export function putRequest(value: unknown): PutRequest {
  const request = requestObject(value, "PUT");
  const { id, meta, ttl } = request;
  if (id === undefined && meta === undefined && ttl === undefined) return NO_PUT_OPTIONS;
  return {
    ...(id === undefined ? {} : { id: validateObjectId(id) }),
    ...(meta === undefined ? {} : { meta: metaOf(meta) }),
    ...(ttl === undefined ? {} : { ttl: validateTtl(ttl)! }),
  };
}

function requestObject(value: unknown, operation: string): Record<string, unknown> {
  if (!isPlainObject(value)) {
    throw new InvalidArgumentError(
      `Invalid ${operation} request: expected an object, got ${shown(value)}`,
    );
  }
  return value;
}

function sizeOf(size: unknown): number | number[] {
  const sizes = validateBlobSizes(size);
  return typeof size === "number" ? sizes[0]! : sizes;
}

function metaOf(meta: unknown): Meta {
  if (!isPlainObject(meta)) {
    throw new InvalidArgumentError(
      `Invalid meta: expected a plain JSON object, got ${shown(meta)}`,
    );
  }
  return meta as Meta;
}
