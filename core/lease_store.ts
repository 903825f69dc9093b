import type { Access, Lease } from "./lease.ts";
import type { ListCursor, Placed } from "./list_page.ts";
import type { ObjectInfo } from "./object.ts";

/** A lease as a store keeps it. */
export interface LeaseRecord extends Lease {
  /** The node that granted the lease, for stores shared by several peers. */
  readonly node?: string;
}

/** What ended when a lease ended: the lease, and the object if it went with it. */
export interface LeaseEnd {
  /** The lease that ended. */
  readonly lease: LeaseRecord;
  /** The object removed from lookups with it: a discarded or abandoned one. */
  readonly removed?: ObjectInfo;
}

/**
 * Lease state and the object directory: the part of a peer that must be
 * atomic. Each method is one atomic step that applies the lifecycle rules of
 * `core/lifecycle.ts`; an implementation over a shared store (Redis) lets
 * several peers agree on one namespace.
 */
export interface LeaseStore {
  /**
   * Records a new object in state CREATING together with its CREATE lease.
   *
   * @throws {AlreadyExistsError} When the id is taken, by a sealed object or one being created.
   */
  create(info: ObjectInfo, lease: LeaseRecord): Promise<void>;
  /**
   * Grants a READ or WRITE lease on an existing object and returns the object.
   *
   * Identity of the returned info is part of the contract: a store returns a
   * new object whenever anything of the object changed (seal, annotate, a new
   * object under the id), never the old one patched in place, so that a
   * caller may take "the same object as last time" to mean "nothing changed"
   * (the Unix-socket OPEN leaves out what the client has seen). A store that
   * keeps its objects in memory returns the identical object while nothing
   * changed, so that the shortcut hits; a store that parses a reply each time
   * returns a new one each time, which only costs the shortcut.
   *
   * @throws {NotFoundError} When no object has the id.
   * @throws {NotSealedError} For READ of an object still being created.
   */
  grant(objectId: string, lease: LeaseRecord): Promise<ObjectInfo>;
  /**
   * Looks up a live lease.
   *
   * @throws {UnknownLeaseError} When the lease was never issued or has ended.
   * @throws {LeaseExpiredError} When its TTL has passed.
   */
  lease(leaseId: string): Promise<LeaseRecord>;
  /**
   * Seals the object of a CREATE lease; the lease stays until released.
   *
   * @throws {WrongAccessError} When the lease is not CREATE.
   * @throws {AlreadySealedError} When the object is sealed already.
   */
  seal(leaseId: string, sealed: SealPatch): Promise<ObjectInfo>;
  /**
   * Removes the object of a CREATE or WRITE lease from lookups and ends the lease.
   *
   * @throws {WrongAccessError} For a READ lease.
   */
  discard(leaseId: string): Promise<LeaseEnd>;
  /** Ends a lease; an unsealed object of a CREATE lease is removed with it. */
  release(leaseId: string): Promise<LeaseEnd>;
  /** Moves the expiry of a lease with a TTL to `now + ttl`. */
  renew(leaseId: string, ttl: number, now: number): Promise<LeaseRecord>;
  /** Ends every lease whose expiry is at or before `now`, as {@link release} does. */
  expire(now: number): Promise<LeaseEnd[]>;
  /** Updates fields of a sealed object that do not change its bytes. */
  annotate(objectId: string, patch: AnnotatePatch): Promise<void>;
  /** The object under an id, or undefined. */
  stat(objectId: string): Promise<ObjectInfo | undefined>;
  /** Every object in lookups. */
  list(): Promise<ObjectInfo[]>;
  /**
   * Optional, for a store that keeps its objects in a put order of its own
   * (a shared one, whose order every peer on it sees): the first `count`
   * objects after `after` in that order, each with its place, fewer only at
   * the end, with no more work than the page needs. A peer pages its list
   * from it, in that order, instead of reading {@link list} whole for each
   * page. Objects being created are in it as in {@link list}. It may give
   * each object the cursor that goes on after it (`Placed.next`, with a
   * `ListCursor.check` of the store), and refuse, with
   * `InvalidArgumentError`, a cursor whose check is another store's.
   */
  listAfter?(after: ListCursor | undefined, count: number): Promise<Placed[]>;
  /**
   * Optional, for a store of one peer's own, in its process: the object
   * under an id, as {@link stat} gives it, at once. With it a peer pages its
   * list from its own index in put order instead of reading {@link list}
   * whole for each page.
   */
  statHere?(objectId: string): ObjectInfo | undefined;
  /**
   * Optional, for a store of one peer's own: records a sealed object made
   * beside the peer, with no lease, at once.
   *
   * @returns False when the id is taken (nothing is recorded).
   */
  insertSealed?(info: ObjectInfo): boolean;
  /**
   * Optional, for a store of one peer's own: takes a sealed object out of
   * lookups at once, as a WRITE lease's discard would.
   *
   * @returns False when no sealed object has the id (nothing changes).
   */
  removeSealed?(objectId: string): boolean;
  /** Counts for metrics and tests. */
  counts(): Promise<{ objects: number; leases: number }>;
  /** Ends the store's connections. */
  close(): Promise<void>;
  /**
   * Optional: the peer dropped its copy of `local.id` because the store
   * records other bytes under that id (`recorded`); a shared store reports it.
   */
  conflict?(local: ObjectInfo, recorded: ObjectInfo): void;
  /** Optional: figures for a metrics endpoint, named as in `Peer.metrics`. */
  metrics?(): Readonly<Record<string, number>>;
  /**
   * Optional, for a store shared by several peers; a peer calls it once, when
   * constructed. The store then asks `local` what this peer holds: to register
   * it again when the shared state lost it (a Redis that restarted empty), to
   * grant READ leases on it while the shared state is unreachable, and to
   * drop a copy whose id the shared state gives to other bytes.
   */
  attach?(local: LocalObjects): void;
}

/** The sealed objects whose bytes a peer holds, as a shared {@link LeaseStore} sees them. */
export interface LocalObjects {
  /** The sealed object under an id, when this peer holds its bytes. */
  get(objectId: string): ObjectInfo | undefined;
  /** Every sealed object this peer holds. */
  list(): ObjectInfo[];
  /**
   * The content digest of the sealed object under an id, computed from the
   * bytes held here when not known yet; undefined when this peer holds no such
   * object or cannot compute digests.
   */
  digest(objectId: string): Promise<string | undefined>;
  /**
   * Drops the copy held here of a sealed object whose id the shared state
   * gives to other bytes: it leaves lookups at once, and its memory goes when
   * its last reader lets go.
   */
  forfeit(objectId: string): void;
}

/** What sealing sets on an object. */
export interface SealPatch {
  /** When it was sealed. */
  readonly sealedAt: number;
  /** A content digest, if known at seal. */
  readonly digest?: string;
}

/** Fields of a sealed object that may change without changing its bytes. */
export interface AnnotatePatch {
  /** A content digest computed after seal. */
  readonly digest?: string;
  /** The tier now holding the bytes. */
  readonly tier?: string;
}

/** A new lease record for `access` on `objectId`. */
export function leaseRecord(
  id: string,
  objectId: string,
  access: Access,
  ttl: number | undefined,
  now: number,
  node?: string,
): LeaseRecord {
  // Fields set one by one, not spread from objects made for it: a lease per get.
  const record: { -readonly [K in keyof LeaseRecord]: LeaseRecord[K] } = { id, objectId, access };
  if (ttl !== undefined) {
    record.ttl = ttl;
    record.expiresAt = now + ttl;
  }
  if (node !== undefined) record.node = node;
  return record;
}
