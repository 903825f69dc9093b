import type { Blob } from "./blob.ts";
import type { Clock } from "./clock.ts";
import type { Access, Lease } from "./lease.ts";
import type { ListPage, ListPageOptions } from "./list_page.ts";
import type { ObjectInfo } from "./object.ts";
import type { Meta } from "./validate.ts";

/** Options of {@link Peer.acquire}. */
export interface AcquireOptions {
  /** Lease time to live in milliseconds; without it the lease lasts until released. */
  readonly ttl?: number;
  /**
   * CREATE only: the object's time to live in milliseconds, counted from the
   * create; at `createdAt + objectTtl` the object leaves lookups, sealed or
   * not (see `objectDeadline`). Without it the object stays until deleted.
   */
  readonly objectTtl?: number;
  /** CREATE only: the object's size in bytes, or the size of each of its blobs. */
  readonly size?: number | readonly number[];
  /** CREATE only: the object's metadata, a plain JSON object. */
  readonly meta?: Meta;
  /**
   * CREATE only: memfds another process has filled, one per blob and each
   * of its blob's size, that become the object's blobs instead of new
   * memory; for peers that keep blobs in memfds. The peer takes them over
   * when the call succeeds; when it throws they are still the caller's.
   */
  readonly memfds?: readonly number[];
  /**
   * READ only, in a cluster: answer from this host's copies and never fetch
   * the object from another daemon. Daemons fetching from each other set it.
   */
  readonly local?: boolean;
}

/** What {@link Peer.acquire} hands out: the lease, the object, and its bytes. */
export interface Acquired {
  /** The lease; pass its id to seal, discard, release and renew. */
  readonly lease: Lease;
  /** The object as it was when the lease was granted. */
  readonly object: ObjectInfo;
  /** The object's bytes, usable while the lease lasts. */
  readonly blobs: readonly Blob[];
}

/** Counts of what a peer holds, for metrics and tests. */
export interface PeerStats {
  /** Objects in lookups. */
  readonly objects: number;
  /** Live leases. */
  readonly leases: number;
  /** Bytes held, including objects deleted while still read. */
  readonly bytes: number;
  /** The most bytes the peer may hold. */
  readonly capacity: number;
  /** READ leases granted; for peers with tiers, those served from the fastest tier. Absent means 0. */
  readonly hits?: number;
  /**
   * READ leases asked for objects not found; for peers with tiers, reads that
   * had to go to a slower tier. Absent means 0.
   */
  readonly misses?: number;
  /** Objects dropped to make room, for peers that evict; absent means 0. */
  readonly evictions?: number;
  /** Objects that left lookups at the end of their TTL; absent means 0. */
  readonly expirations?: number;
}

/**
 * The control plane of Packice: a peer hands out leases on objects and never
 * copies their bytes itself. Every peer, local or behind a transport, follows
 * the same lifecycle rules and throws the same errors.
 */
export interface Peer extends AsyncDisposable {
  /**
   * Acquires a lease on an object.
   *
   * - READ: a sealed object.
   * - CREATE: a new object of `options.size` bytes; `objectId` undefined picks a fresh id.
   * - WRITE: an existing object, to write into it before seal or to discard it.
   */
  acquire(
    objectId: string | undefined,
    access: Access,
    options?: AcquireOptions,
  ): Promise<Acquired>;
  /** Seals the object of a CREATE lease: its bytes never change again. */
  seal(leaseId: string): Promise<ObjectInfo>;
  /** Deletes the object of a CREATE or WRITE lease and ends the lease. */
  discard(leaseId: string): Promise<void>;
  /** Ends a lease; an unsealed object of a CREATE lease is discarded. */
  release(leaseId: string): Promise<void>;
  /** Extends a lease by its TTL, or by a new one. */
  renew(leaseId: string, ttl?: number): Promise<Lease>;
  /** What is known of an object. */
  stat(objectId: string): Promise<ObjectInfo>;
  /** Every object in lookups. */
  list(): Promise<ObjectInfo[]>;
  /**
   * Optional: one page of the list, in put order (see `list_page.ts`), to
   * list a peer of any size with bounded memory. A peer without it is paged
   * from its whole list by `listPageOf`.
   *
   * @throws {InvalidArgumentError} For a malformed cursor or a limit out of range.
   */
  listPage?(options?: ListPageOptions): Promise<ListPage>;
  /** Whether an object exists, sealed or not. */
  has(objectId: string): Promise<boolean>;
  /** Counts of objects, leases and bytes. */
  stats(): Promise<PeerStats>;
  /**
   * Optional: remembers the content digest of the sealed object a lease is
   * on, computed by its reader, so later readers find it in
   * {@link ObjectInfo.digest}. Transports use it for entity tags.
   */
  recordDigest?(leaseId: string, digest: string): Promise<void>;
  /**
   * Optional: figures beyond {@link PeerStats} for metrics endpoints, by
   * name without the `packice_` prefix, Prometheus style: a name ending in
   * `_total` is a counter, any other a gauge. A tiered peer reports bytes per
   * tier, demotions and promotions here.
   */
  metrics?(): Promise<Readonly<Record<string, number>>>;
  /** Ends every lease and frees everything. Idempotent. */
  close(): Promise<void>;
}

/** Options of a one-step put: {@link DirectPut.putObject}, `Client.put` and `Client.create`. */
export interface PutOptions {
  /** The object id; a fresh one when absent. */
  readonly id?: string;
  /** Metadata, a plain JSON object. */
  readonly meta?: Meta;
  /**
   * The object's time to live in milliseconds, from now: at the deadline it
   * leaves lookups as a delete does, sealed or not (an unfinished object is
   * discarded); readers holding it keep their bytes until they close. The
   * CREATE lease ends at the same deadline. Without it the object stays.
   */
  readonly ttl?: number;
}

/** Options of {@link DirectPut.putObject} as a transport's server calls it. */
export interface DirectPutOptions extends PutOptions {
  /**
   * Gives the chunks up to the peer: when there is one chunk, a store may
   * keep its memory instead of a copy, and detach it. Only for bytes the
   * caller owns and will not touch again, such as a request just received.
   */
  readonly transfer?: boolean;
}

/**
 * An optional capability of a peer: store a whole object in one step. A peer
 * behind a network offers it so that a put costs one round trip instead of
 * acquire, write, seal and release; an in-process peer offers it to skip the
 * leased blobs in between.
 */
export interface DirectPut {
  /**
   * Creates, fills and seals an object.
   *
   * @param chunks The bytes, in order.
   * @param size Their total length.
   * @param options Id, metadata, TTL, and whether the chunks are given up.
   * @returns The sealed object.
   */
  putObject(
    chunks: readonly Uint8Array[],
    size: number,
    options: DirectPutOptions,
  ): Promise<ObjectInfo>;
}

/**
 * An optional capability of a peer behind a network: {@link DirectPut} of
 * one array of bytes, answered with the new object's id alone. `Client.put`
 * returns only the id, so a peer that can skip making the object's info
 * offers it: a small put then costs the caller one promise.
 */
export interface IdPut {
  /**
   * Creates, fills and seals an object of `bytes`, which stay the caller's.
   *
   * @param bytes The object's bytes.
   * @param options Id, metadata and TTL.
   * @returns The object's id.
   */
  putId(bytes: Uint8Array, options: PutOptions): Promise<string>;
}

/**
 * An optional capability of a peer behind a network: store a whole object
 * whose bytes come from an iterable, one chunk held at a time, in one
 * request. A client uses it for streams too long to gather.
 */
export interface StreamPut {
  /**
   * Creates, fills and seals an object.
   *
   * @param chunks The bytes, in order, taken one at a time.
   * @param size Their total length.
   * @param options Id, metadata and TTL.
   * @returns The sealed object.
   */
  putStream(chunks: Iterable<Uint8Array>, size: number, options: PutOptions): Promise<ObjectInfo>;
}

/**
 * An optional capability of a peer behind a network: delete an object in one
 * request, as `acquire` WRITE then `discard` would in two (see
 * `deleteInSteps`), with no lease or blobs handed out in between.
 */
export interface DirectDelete {
  /**
   * Deletes an object: it leaves lookups at once, and readers holding it
   * keep their bytes until they close.
   *
   * @param objectId The object.
   * @throws {NotFoundError} When there is no such object.
   */
  deleteObject(objectId: string): Promise<void>;
}

/**
 * An optional capability of a peer behind a network: a READ lease handed to
 * the caller's `make` as its reply is handled, and ended without a promise,
 * so that a get and its close cost the transport no promise of their own.
 * A client reads through it most of all.
 */
export interface DirectRead {
  /**
   * Acquires a READ lease, as `acquire` READ does, and resolves with what
   * `make` returns of it.
   *
   * @param objectId The object.
   * @param options TTL and locality of the lease.
   * @param make Called once with the lease granted; when it throws, the
   *   lease is released and the promise rejects with its error.
   * @throws {NotFoundError} When there is no such object.
   * @throws {NotSealedError} When it is still being created.
   */
  acquireRead<T>(
    objectId: string,
    options: AcquireOptions,
    make: (acquired: Acquired) => T | Promise<T>,
  ): Promise<T>;
  /**
   * Ends a lease from `acquireRead`, as `release` does, with nobody to tell
   * how it went: a lease that has ended already is left as it is. A peer
   * may hold such leases apart from those it finds by id (it then ends
   * them only here).
   *
   * @param acquired What `acquireRead` handed to `make`.
   */
  releaseQuietly(acquired: Acquired): void;
}

/** Whether `peer` offers {@link DirectRead}. */
export function offersDirectRead(peer: Peer): peer is Peer & DirectRead {
  return typeof (peer as Partial<DirectRead>).acquireRead === "function";
}

/** Whether `peer` offers {@link DirectDelete}. */
export function offersDirectDelete(peer: Peer): peer is Peer & DirectDelete {
  return typeof (peer as Partial<DirectDelete>).deleteObject === "function";
}

/**
 * An optional capability of a peer that holds objects itself: it tells when
 * an object leaves its lookups (deleted, evicted, expired, dropped), as a
 * server that serves objects from elsewhere (the native GET listener) must
 * stop serving it at once.
 */
export interface RemovalEvents {
  /**
   * Calls `listener`, synchronously, with the id of each object as it leaves lookups.
   *
   * @returns A function that stops the calls.
   */
  onRemove(listener: (objectId: string) => void): () => void;
}

/** Whether `peer` offers {@link RemovalEvents}. */
export function offersRemovalEvents(peer: Peer): peer is Peer & RemovalEvents {
  return typeof (peer as Partial<RemovalEvents>).onRemove === "function";
}

/**
 * What a peer that offers {@link ReadsBeside} counts of one incarnation of
 * an object: readers and reads served beside its own leases.
 */
export interface BesideReads {
  /**
   * Adds `delta` readers (fewer when negative) of this incarnation, each a
   * lease granted beside the peer's and counted in its `stats().leases`: its
   * bytes are freed only once it has left lookups and no reader is left, and
   * an object read is never idle (evicted, moved).
   */
  hold(delta: number): void;
  /** Counts `count` reads of it: hits, and recency in cache mode. */
  read(count: number): void;
}

/**
 * An optional capability of a peer that holds objects itself: reads served
 * beside its leases (the Unix-socket server's native fast path, which grants
 * READ leases of its own) are counted as its readers and reads.
 */
export interface ReadsBeside {
  /** The clock of the peer's deadlines. */
  readonly clock: Clock;
  /**
   * The incarnation that a live lease of this peer is on, to count reads
   * served beside the peer's leases.
   *
   * @param leaseId A lease of this peer's.
   * @returns Its counts; undefined when the incarnation is not sealed, has
   *   left lookups or will have its info changed (a digest to come), or the
   *   lease is unknown.
   */
  readsBeside(leaseId: string): BesideReads | undefined;
}

/**
 * The bytes of a sealed object held beside a peer (by the Unix-socket
 * server's C, which stored a small put there), lent to the peer until it lets go.
 */
export interface BesideBytes {
  /** Copies `into.length` bytes from `offset` into `into`. */
  copy(offset: number, into: Uint8Array): void;
  /** A new descriptor of a sealed memfd of the bytes, the caller's to close. */
  memfd(): number;
  /** The peer lets go of the bytes, once, when it frees the object. */
  release(): void;
}

/**
 * An optional capability of a peer that holds objects itself: sealed
 * objects stored beside it (small puts the Unix-socket server answers in C),
 * in room it lent, taken in later as its own, with no id, metadata or TTL.
 * With {@link ReadsBeside}, reads of them are counted too.
 */
export interface PutsBeside {
  /** Whether the peer takes such objects: its stores can, and it shares no namespace. */
  readonly takesPutsBeside: boolean;
  /**
   * Lends room for objects stored beside the peer: room that its own new
   * objects do not get until it is given back or used.
   *
   * @param bytes The most to lend.
   * @param reclaim Called when the peer needs room back: gives back up to
   *   the bytes asked for of what is left of the room lent, and returns how
   *   many it gave.
   * @returns The bytes lent, fewer when the peer has less room free.
   */
  lendRoom(bytes: number, reclaim: (bytes: number) => number): number;
  /** Gives back `bytes` of room lent that no object took. */
  returnRoom(bytes: number): void;
  /**
   * Numbers `count` puts just answered beside the peer, in the one order
   * of its puts, seals and reads: their place among its own objects, in
   * lists, and, never read since, in its recency (cache mode).
   *
   * @returns The first of `count` consecutive numbers, above any given before.
   */
  orderPuts(count: number): number;
  /**
   * Adds what takes in (with `adoptBeside`) the objects stored beside the
   * peer that it has not taken in yet. The peer answers from their records
   * what they can answer (a stat, a list, a delete, an eviction) and takes
   * in the one that something of its own needs as an object (a lease on
   * it, a put of its id) before that runs, so none of that ever goes
   * without them; it counts them in its stats meanwhile, and lets go of
   * them when it closes. Their room stays lent until they are taken in.
   *
   * @returns A function that removes it again.
   */
  deferAdoption(deferred: DeferredAdoption): () => void;
  /**
   * Tells the peer's removal listeners (see {@link RemovalEvents}) that an
   * object stored beside it, and deleted there before it was ever taken in,
   * has left lookups.
   */
  removedBeside(objectId: string): void;
  /**
   * Takes in, as it is and in lookups, an object stored beside the peer in
   * room it lent (its size of that room is used from now on).
   *
   * @param info The object: sealed, one blob, no TTL, an id fresh as
   *   `newId` makes them; the peer keeps this very object as its info.
   * @param bytes Its bytes, the peer's until it lets go.
   * @param order Its place in the peer's order (see `orderPuts`), for an
   *   object the peer did not take in when it was put.
   * @returns The counts of its reads beside the peer (call its methods on
   *   it); undefined when the peer cannot take it (closed, or the id taken): the bytes stay the
   *   caller's, and its room is still lent.
   */
  adoptBeside(info: ObjectInfo, bytes: BesideBytes, order?: number): BesideReads | undefined;
  /**
   * Deletes a sealed object held here at once, as a delete of it would (for
   * a delete answered beside the peer): it leaves lookups now, and readers
   * holding it keep their bytes until they close.
   *
   * @returns False when no sealed object of this peer's own has the id
   *   (nothing changes): delete it the usual way.
   */
  removeBeside(objectId: string): boolean;
}

/**
 * Objects stored beside a peer that it has not taken in yet, in put order:
 * see {@link PutsBeside.deferAdoption}. Records are found by index, which
 * holds only until one is taken in, removed or added: use them at once.
 */
export interface DeferredAdoption {
  /** How many there are. */
  readonly objects: number;
  /** Their bytes in all. */
  readonly bytes: number;
  /** Has the peer take in the one with id `objectId`, if there is one. */
  adoptOne(objectId: string): void;
  /** The info of the one with id `objectId`, without taking it in; undefined when none has it. */
  info(objectId: string): ObjectInfo | undefined;
  /** The index of the first record after record `at` (from the first when -1), or -1. */
  next(at: number): number;
  /** The index of the first record placed after `order` in the peer's order, or -1: where a page of a list starts. */
  after(order: number): number;
  /** Record `at`'s place in the peer's order (see {@link PutsBeside.orderPuts}). */
  order(at: number): number;
  /** Record `at`'s object's size. */
  size(at: number): number;
  /** Record `at`'s object's info (a new object each time). */
  infoAt(at: number): ObjectInfo;
  /** The records as they are now, in put order, to list a slice at a time. */
  snapshot(): WaitingList;
  /**
   * Deletes the one with id `objectId`, never taken in: it leaves lookups,
   * its room goes back to the peer and its bytes go. The peer tells its
   * own listeners.
   *
   * @returns Whether there was one.
   */
  remove(objectId: string): boolean;
  /**
   * The peer closes: lets go of every one, taking none in, and of the
   * peer; a slice at a time, yielding to the event loop in between.
   */
  discard(): Promise<void>;
}

/** Objects waiting beside a peer as they were at one moment, in put order: see {@link DeferredAdoption.snapshot}. */
export interface WaitingList {
  /** How many. */
  readonly length: number;
  /** The place of the `i`th in the peer's order (see {@link PutsBeside.orderPuts}). */
  order(i: number): number;
  /** The infos of the `start`th to the one before the `end`th, new objects. */
  infos(start: number, end: number): ObjectInfo[];
}

/** Whether `peer` offers {@link PutsBeside} and takes such objects. */
export function offersPutsBeside(peer: Peer): peer is Peer & PutsBeside {
  return (peer as Partial<PutsBeside>).takesPutsBeside === true;
}

/** Whether `peer` offers {@link ReadsBeside} and {@link RemovalEvents}. */
export function offersReadsBeside(peer: Peer): peer is Peer & ReadsBeside & RemovalEvents {
  return typeof (peer as Partial<ReadsBeside>).readsBeside === "function" &&
    offersRemovalEvents(peer);
}

/** Whether `peer` offers {@link IdPut}. */
export function offersIdPut(peer: Peer): peer is Peer & IdPut {
  return typeof (peer as Partial<IdPut>).putId === "function";
}

/** Whether `peer` offers {@link DirectPut}. */
export function offersDirectPut(peer: Peer): peer is Peer & DirectPut {
  return typeof (peer as Partial<DirectPut>).putObject === "function";
}

/** What {@link ArrivingRead.readArriving} hands out: an object still arriving and its bytes. */
export interface ArrivingObject {
  /** The object as it began to arrive: state `CREATING`, its size, metadata and digest. */
  readonly object: ObjectInfo;
  /**
   * Its bytes in order, each as soon as the piece holding it has arrived and
   * verified; the stream closes once the object is sealed, and fails with a
   * typed error when it cannot be. Cancel it to stop early.
   */
  readonly body: ReadableStream<Uint8Array>;
}

/**
 * An optional capability of a peer that fetches objects from elsewhere (a
 * cluster peer) or reaches such a peer over a network: read an object while
 * it is still on its way here, its bytes verified piece by piece, long
 * before the last piece lands.
 */
export interface ArrivingRead {
  /**
   * Starts or joins the fetch of `objectId` and streams it as it arrives.
   *
   * @returns Undefined when the object is held here already (read it with a
   *   READ lease) or was sealed before its first byte could be streamed.
   * @throws {NotFoundError} When no one holds it, or the fetch failed before it began.
   */
  readArriving(objectId: string): Promise<ArrivingObject | undefined>;
}

/** Whether `peer` offers {@link ArrivingRead}. */
export function offersArrivingRead(peer: Peer): peer is Peer & ArrivingRead {
  return typeof (peer as Partial<ArrivingRead>).readArriving === "function";
}

/**
 * An optional capability of a peer whose `stat` also answers for objects
 * held elsewhere (a daemon of an embedded cluster): the same question for
 * this host alone, as daemons ask it of each other (`?local=1`), so that
 * one's answer never sends the question on to another.
 */
export interface LocalStat {
  /** What is known of an object held here or on its way here; `NotFoundError` otherwise. */
  statLocal(objectId: string): Promise<ObjectInfo>;
}

/** Whether `peer` offers {@link LocalStat}. */
export function offersLocalStat(peer: Peer): peer is Peer & LocalStat {
  return typeof (peer as Partial<LocalStat>).statLocal === "function";
}
