/**
 * BasePeer: the lifecycle every peer inherits, over any blob store and lease
 * store. One idea, the state of the objects one peer holds (the current
 * incarnation of each id, the leases on it, reference counts, recency and
 * deadlines) and each operation that changes it; they share that private
 * state, often within one turn, so they stay in one class. What it builds on
 * lives apart: the rules in `lifecycle.ts` and `range.ts`, a lease's view of
 * a blob in `leased_blob.ts`, the holding in `holding.ts`, eviction victims
 * in `eviction.ts`, lists in put order in `put_order.ts`, deadlines in
 * `deadline_timer.ts`.
 *
 * @module
 */
import type { Blob } from "./blob.ts";
import type { BlobStore, StoredObject } from "./blob_store.ts";
import { checkChunks, checkMemfds, checkOptions } from "./call_checks.ts";
import { checkRange } from "./range.ts";
import { creatingInfo } from "./creating_info.ts";
import { deleteInSteps } from "./delete_in_steps.ts";
import type { Clock } from "./clock.ts";
import { systemClock } from "./clock.ts";
import { DeadlineTimer } from "./deadline_timer.ts";
import {
  AlreadyExistsError,
  CapacityExceededError,
  ClosedError,
  InvalidArgumentError,
  NotFoundError,
  NotSealedError,
  UnknownLeaseError,
  UnsupportedError,
} from "./errors.ts";
import { Access, type Lease } from "./lease.ts";
import { type LeaseEnd, type LeaseRecord, leaseRecord, type LeaseStore } from "./lease_store.ts";
import { closeLeaseViews, closeViews, type Holding, sealedInfo } from "./holding.ts";
import { LeasedBlob } from "./leased_blob.ts";
import { checkSealable, isExpired } from "./lifecycle.ts";
import { evictionVictims } from "./eviction.ts";
import { listInPutOrder } from "./put_order.ts";
import {
  cursorAfter,
  isAfter,
  type ListCursor,
  type ListPage,
  type ListPageOptions,
  listPageRequest,
  pageOf,
  type Placed,
  placedAfter,
} from "./list_page.ts";
import { Lru } from "./lru.ts";
import { OrderIndex } from "./order_index.ts";
import { type PeerMode, validateMode } from "./mode.ts";
import type { BasePeerOptions } from "./peer_options.ts";
import type { ObjectInfo } from "./object.ts";
import { sameContent } from "./object.ts";
import type {
  Acquired,
  AcquireOptions,
  BesideBytes,
  BesideReads,
  DeferredAdoption,
  DirectDelete,
  DirectPutOptions,
  Peer,
  PeerStats,
  PutsBeside,
  ReadsBeside,
  RemovalEvents,
} from "./peer.ts";
import { publicLease } from "./public_lease.ts";
import {
  newId,
  validateAccess,
  validateLeaseId,
  validateObjectId,
  validateSize,
  validateTtl,
} from "./validate.ts";

export type { BasePeerOptions, PeerOptions } from "./peer_options.ts";

/**
 * The lifecycle every peer inherits: leases, seal, discard, release, expiry,
 * and reference-counted freeing, over any {@link BlobStore} and
 * {@link LeaseStore}. Subclasses choose the stores.
 */
export class BasePeer implements Peer, DirectDelete, RemovalEvents, ReadsBeside, PutsBeside {
  readonly #blobs: BlobStore;
  readonly #leases: LeaseStore;
  readonly #clock: Clock;
  readonly #node: string | undefined;
  /** The current incarnation of each object held here. */
  readonly #objects = new Map<string, Holding>();
  /** The incarnation each local lease is on. */
  readonly #held = new Map<string, Holding>();
  #bytesHeld = 0;
  readonly #digest: ((blobs: readonly Blob[]) => Promise<string>) | undefined;
  /** Digests being computed, awaited by close(). */
  readonly #digesting = new Set<Promise<void>>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly #mode: PeerMode;
  /** Sealed objects held here from least to most recently read, in cache mode. */
  readonly #recency = new Lru<Holding>();
  /**
   * Objects taken in from beside and not read since, in cache mode: their
   * recency is still their put's (`used`), a place the LRU's order cannot
   * give them; the first read moves them to it.
   */
  readonly #untouched = new Set<Holding>();
  /** Objects with a TTL, by deadline; one timer waits for the nearest. */
  readonly #deadlines: DeadlineTimer<Holding>;
  /** Objects taken from {@link BasePeer.#deadlines} whose removal is under way. */
  #expiring = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #expirations = 0;
  /** Leases granted beside this peer's own, on objects it holds (see {@link ReadsBeside}). */
  #besideLeases = 0;
  readonly #evicted = new Set<(info: ObjectInfo) => void>();
  readonly #removed = new Set<(objectId: string) => void>();
  /** {@link BasePeer.#ended}, made once: a release hands it the lease's end. */
  readonly #endedBound = (end: LeaseEnd): void => this.#ended(end);
  /** The objects stored beside this peer not taken in yet (see {@link PutsBeside.deferAdoption}). */
  #deferred: readonly DeferredAdoption[] = [];
  /**
   * The last place given in the one order of puts, seals and reads here
   * (see {@link PutsBeside.orderPuts}): a holding's `order` and `used`.
   */
  #order = 0;
  /** The latest `order` of an object in lookups: one taken in with an earlier one is out of order. */
  #newest = 0;
  /** Lookups may be out of put order: an object came in after objects put later. */
  #unordered = false;
  /** The holdings in lookups by put order, kept when the lease store is this peer's own: pages start in it. */
  readonly #byOrder: OrderIndex | undefined;
  /**
   * The puts in flight, in the lease store and not holdings yet (their
   * blobs are being made), by id, with their places in put order: a page
   * lists them, at those places, as the store's list does. Kept unless the
   * store keeps a put order of its own.
   */
  readonly #inFlight: Map<string, number> | undefined;

  /**
   * Creates the instance.
   *
   * @param options The stores and clock.
   */
  constructor(options: BasePeerOptions) {
    this.#blobs = options.blobs;
    this.#leases = options.leases;
    this.#byOrder = options.leases.statHere === undefined ? undefined : new OrderIndex();
    this.#inFlight = this.#byOrder !== undefined || options.leases.listAfter === undefined
      ? new Map()
      : undefined;
    this.#clock = options.clock ?? systemClock;
    this.#deadlines = new DeadlineTimer(this.#clock, () => this.#expireDue().catch(() => {}));
    this.#node = options.node;
    this.#digest = options.digest;
    this.#mode = validateMode(options.mode, "store");
    options.leases.attach?.({
      get: (objectId) => sealedInfo(this.#objects.get(objectId)),
      list: () => [...this.#objects.values()].flatMap((holding) => sealedInfo(holding) ?? []),
      digest: (objectId) => this.#digestHeld(objectId),
      forfeit: (objectId) => this.#forfeit(objectId),
    });
    const interval = options.sweepInterval ?? 1000;
    if (interval > 0) {
      const sweeper = setInterval(() => this.sweep().catch(() => {}), interval);
      Deno.unrefTimer(sweeper);
      this.#sweeper = sweeper;
    }
  }

  /** The blob store, for subclasses and transports that need backend details. */
  protected get blobStore(): BlobStore {
    return this.#blobs;
  }

  /**
   * Calls `listener` with each object dropped to make room (cache mode), as
   * it leaves lookups: a cluster withdraws this node as its holder.
   *
   * @returns A function that stops the calls.
   */
  onEvict(listener: (info: ObjectInfo) => void): () => void {
    this.#evicted.add(listener);
    return () => void this.#evicted.delete(listener);
  }

  /**
   * Calls `listener` with the id of each object as it leaves lookups, for
   * whatever reason (see {@link RemovalEvents}).
   *
   * @returns A function that stops the calls.
   */
  onRemove(listener: (objectId: string) => void): () => void {
    this.#removed.add(listener);
    return () => void this.#removed.delete(listener);
  }

  /**
   * Counts reads served beside this peer's leases as readers and reads of
   * the incarnation that `leaseId` is on (see {@link ReadsBeside}).
   *
   * @returns Its counts; undefined when it is not sealed or has left lookups,
   *   or its digest is still to come (its info would change).
   */
  readsBeside(leaseId: string): BesideReads | undefined {
    const holding = this.#held.get(leaseId);
    if (holding === undefined || holding.removed || !holding.sealed) return undefined;
    if (this.#digest !== undefined && holding.info.digest === undefined) return undefined;
    const counter = this.#counter;
    // Functions of their own: callers may hand them on apart from the object.
    return {
      hold: (delta) => counter.hold(holding, delta),
      read: (count) => counter.read(holding, count),
    };
  }

  /** What {@link HoldingReads} change in this peer, made once. */
  readonly #counter: BesideCounter = {
    hold: (holding, delta) => {
      const change = Math.max(delta, -holding.refs);
      holding.refs += change;
      this.#besideLeases += change;
      if (holding.removed && holding.refs === 0 && !this.#closed) this.#free(holding);
    },
    read: (holding, count) => {
      this.#hits += count;
      if (this.#mode === "cache" && !holding.removed) this.#refresh(holding);
    },
  };

  /**
   * Whether objects stored beside this peer (see {@link PutsBeside}) are
   * taken: its stores can hold them, and no namespace is shared with other
   * peers, nor digests computed at seal.
   */
  get takesPutsBeside(): boolean {
    return this.#blobs.adoptBeside !== undefined && this.#leases.insertSealed !== undefined &&
      this.#digest === undefined && this.#node === undefined;
  }

  /** Lends room of the blob store for objects stored beside this peer; see {@link PutsBeside.lendRoom}. */
  lendRoom(bytes: number, reclaim: (bytes: number) => number): number {
    if (this.#closed || !this.takesPutsBeside) return 0;
    return this.#blobs.lendRoom?.(bytes, reclaim) ?? 0;
  }

  /** Numbers puts answered beside this peer; see {@link PutsBeside.orderPuts}. */
  orderPuts(count: number): number {
    const first = this.#order + 1;
    this.#order += count;
    return first;
  }

  /** Adds what takes in objects stored beside this peer later; see {@link PutsBeside.deferAdoption}. */
  deferAdoption(deferred: DeferredAdoption): () => void {
    if (this.#closed) {
      void deferred.discard();
      return () => {};
    }
    this.#deferred = [...this.#deferred, deferred];
    return () => {
      this.#deferred = this.#deferred.filter((other) => other !== deferred);
    };
  }

  /** Tells listeners of removals of an object never taken in; see {@link PutsBeside.removedBeside}. */
  removedBeside(objectId: string): void {
    for (const listener of this.#removed) listener(objectId);
  }

  /** Gives back room lent that no object took; see {@link PutsBeside.returnRoom}. */
  returnRoom(bytes: number): void {
    this.#blobs.returnRoom?.(bytes);
  }

  /**
   * Takes in a sealed object stored beside this peer, in room it lent, as
   * a put of it would have left it; see {@link PutsBeside.adoptBeside}.
   */
  adoptBeside(info: ObjectInfo, bytes: BesideBytes, order?: number): BesideReads | undefined {
    if (this.#closed || !this.takesPutsBeside || !this.#leases.insertSealed!(info)) {
      return undefined;
    }
    // Cannot throw: the store closes only with this peer, checked above.
    // One object per put, its methods on its class: call them on it.
    return new HoldingReads(
      this.#adopt(info, this.#blobs.adoptBeside!(info, bytes), order, order !== undefined),
      this.#counter,
    );
  }

  /** The clock this peer uses. */
  get clock(): Clock {
    return this.#clock;
  }

  /**
   * Whether `stored` holds the current incarnation of `objectId` in lookups
   * with no lease of this peer on it, so a subclass may move its bytes or
   * drop it. Bytes of an incarnation deleted while still read are never idle.
   */
  protected isIdle(objectId: string, stored: StoredObject): boolean {
    const holding = this.#objects.get(objectId);
    return holding !== undefined && holding.stored === stored && holding.refs === 0;
  }

  /**
   * Deletes the incarnation of `objectId` whose bytes are `stored` from
   * lookups, as a delete does, unless it is no longer the current one; its
   * bytes are freed once its readers let go. For subclasses that drop
   * objects to make room.
   *
   * @returns Whether it was removed.
   */
  protected async drop(objectId: string, stored: StoredObject): Promise<boolean> {
    const holding = this.#objects.get(objectId);
    return holding !== undefined && holding.stored === stored && await this.#remove(holding);
  }

  /**
   * Adopts objects found by the blob store from an earlier run, as sealed
   * objects in lookups. Subclasses call this once before serving; on failure
   * the peer is closed.
   */
  protected async recover(): Promise<number> {
    try {
      return await this.#recover();
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  async #recover(): Promise<number> {
    const found = await this.#blobs.recover();
    for (const { info, stored } of found) {
      const leaseId = newId();
      const now = this.#clock.now();
      try {
        await this.#leases.create(
          { ...info, state: "CREATING" },
          leaseRecord(leaseId, info.id, Access.CREATE, undefined, now, this.#node),
        );
        await this.#leases.seal(leaseId, { sealedAt: info.sealedAt ?? now });
        await this.#leases.release(leaseId);
      } catch (error) {
        if (!(error instanceof AlreadyExistsError)) throw error;
      }
      this.#adopt(info, stored);
    }
    return found.length;
  }

  acquire(
    objectId: string | undefined,
    access: Access,
    options: AcquireOptions = {},
  ): Promise<Acquired> {
    // A promise chain, not an async function: a get's lease is the daemon's
    // most frequent request, and an async frame would be most of what it allocates.
    try {
      this.#checkOpen();
      this.#takeIn(objectId);
      validateAccess(access);
      checkOptions(options);
      const ttl = validateTtl(options.ttl);
      if (access === Access.CREATE) return this.#create(objectId, ttl, options);
      if (objectId === undefined) {
        throw new InvalidArgumentError(`Invalid object id: required for ${access}`);
      }
      // An id held here was checked when its object was made.
      if (typeof objectId !== "string" || !this.#objects.has(objectId)) {
        validateObjectId(objectId);
      }
      const now = this.#clock.now();
      const lease = leaseRecord(newId(), objectId, access, ttl, now, this.#node);
      return this.#leases.grant(objectId, lease).then(
        (info) => this.#granted(objectId, lease, info, now),
        (error) => {
          if (access === Access.READ && error instanceof NotFoundError) this.#misses++;
          throw error;
        },
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Hands out a lease the store has granted, once its object is known to be here and whole. */
  #granted(
    objectId: string,
    lease: LeaseRecord,
    info: ObjectInfo,
    now: number,
  ): Acquired | Promise<Acquired> {
    const access = lease.access;
    const holding = this.#objects.get(objectId);
    if (holding !== undefined && isExpired(holding.info, now)) {
      return this.#refuse(lease, true, `No object: ${objectId}`);
    }
    if (holding === undefined || (access === Access.READ && !this.#serves(holding, info))) {
      return this.#refuse(lease, false, `Object ${objectId} is not held by this peer`);
    }
    if (access === Access.READ) {
      this.#hits++;
      if (this.#mode === "cache") this.#refresh(holding);
      const blobs = holding.stored.blobs;
      for (let i = 0; i < blobs.length; i++) {
        const settling = blobs[i]!.settled?.();
        if (settling !== undefined) return this.#handSettled(holding, lease, info, settling, i + 1);
      }
    }
    this.#count(holding, lease);
    return this.#hand(holding, lease, info);
  }

  /** {@link BasePeer.#granted} for blobs still settling: waits for each, in order, from `next`. */
  async #handSettled(
    holding: Holding,
    lease: LeaseRecord,
    info: ObjectInfo,
    settling: Promise<unknown>,
    next: number,
  ): Promise<Acquired> {
    await settling;
    const blobs = holding.stored.blobs;
    for (let i = next; i < blobs.length; i++) {
      const later = blobs[i]!.settled?.();
      if (later !== undefined) await later;
    }
    this.#count(holding, lease);
    return this.#hand(holding, lease, info);
  }

  /** Ends a granted lease whose object is gone or not here, and fails the acquire. */
  async #refuse(lease: LeaseRecord, expired: boolean, message: string): Promise<never> {
    await this.#leases.release(lease.id);
    if (lease.access === Access.READ) this.#misses++;
    if (expired) await this.#expireDue();
    throw new NotFoundError(message);
  }

  /**
   * Creates, fills and seals an object of one blob in one step, as
   * `acquire` CREATE, a write per chunk, `seal` and `release` would, with the
   * same lease-store operations but no leased blobs in between.
   *
   * @param chunks The bytes, in order.
   * @param size Their total length.
   * @param options Id, metadata and TTL of the CREATE lease; and
   * `transfer`, which gives the chunks up to the peer: when there is one, a
   * store may keep its memory instead of a copy, and detach it.
   * @returns The sealed object.
   */
  async putObject(
    chunks: readonly Uint8Array[],
    size: number,
    options: DirectPutOptions = {},
  ): Promise<ObjectInfo> {
    this.#checkOpen();
    checkChunks(chunks);
    validateSize(size, "size");
    checkOptions(options);
    this.#takeIn(options.id);
    const ttl = validateTtl(options.ttl);
    // Given to put, a TTL is the object's too: see `objectDeadline`.
    const fields: AcquireOptions = {
      size,
      ...(options.meta === undefined ? {} : { meta: options.meta }),
      ...(ttl === undefined ? {} : { objectTtl: ttl }),
    };
    // One chunk given up and the store can keep it: no copy.
    const given = options.transfer === true && chunks.length === 1 && chunks[0]!.length === size
      ? chunks[0]
      : undefined;
    const { holding, lease, filled } = await this.#begin(options.id, ttl, fields, given);
    try {
      const blob = holding.stored.blobs[0]!;
      let at = 0;
      for (const chunk of filled ? [] : chunks) {
        checkRange("write", at, chunk.length, blob.size, lease.objectId);
        await blob.write(at, chunk);
        at += chunk.length;
      }
      this.#checkOpen();
      // A fresh lease on a fresh holding: nothing to check before sealing
      // that the lease store does not check again.
      return await this.#seal(lease.id, holding);
    } finally {
      await this.release(lease.id).catch(() => {});
    }
  }

  async #create(
    objectId: string | undefined,
    ttl: number | undefined,
    options: AcquireOptions,
  ): Promise<Acquired> {
    const { holding, lease, info } = await this.#begin(objectId, ttl, options);
    return this.#hand(holding, lease, info);
  }

  /** Creates an object and its CREATE lease, and counts the lease on its holding. */
  async #begin(
    objectId: string | undefined,
    ttl: number | undefined,
    options: AcquireOptions,
    given?: Uint8Array,
  ): Promise<{ holding: Holding; lease: LeaseRecord; info: ObjectInfo; filled: boolean }> {
    const id = objectId === undefined ? newId() : validateObjectId(objectId);
    const now = this.#clock.now();
    const info = creatingInfo(id, options, now);
    const memfds = options.memfds;
    if (memfds !== undefined) checkMemfds(memfds);
    if (memfds !== undefined && this.#blobs.allocateFrom === undefined) {
      throw new UnsupportedError("Cannot take over memfds: this peer keeps no blobs in memfds");
    }
    const lease = leaseRecord(newId(), id, Access.CREATE, ttl, now, this.#node);
    // Its place in lists: taken as the lease store adds it (at once, for one in memory).
    let order = ++this.#order;
    try {
      await this.#leases.create(info, lease);
    } catch (error) {
      if (!(error instanceof AlreadyExistsError)) throw error;
      // The holder of that id may have expired without a sweep yet.
      await this.sweep();
      order = ++this.#order;
      await this.#leases.create(info, lease);
    }
    let stored: StoredObject;
    const filled = given !== undefined && memfds === undefined &&
      this.#blobs.allocateFilled !== undefined;
    this.#inFlight?.set(id, order);
    try {
      stored = await this.#withRoom(
        info,
        () =>
          memfds !== undefined
            ? this.#blobs.allocateFrom!(info, memfds)
            : filled
            ? this.#blobs.allocateFilled!(info, given!)
            : this.#blobs.allocate(info),
      );
    } catch (error) {
      await this.#leases.release(lease.id).catch(() => {});
      throw error;
    } finally {
      this.#inFlight?.delete(id);
    }
    const holding = this.#adopt(info, stored, order);
    this.#count(holding, lease);
    return { holding, lease, info, filled };
  }

  /**
   * Deletes an object, as `acquire` WRITE then `discard` do: it leaves
   * lookups at once, and readers holding it keep their bytes until they
   * close. A sealed object held here, in a lease store of this peer's own,
   * goes in this call, with no lease in between.
   *
   * @throws {NotFoundError} When there is no such object.
   */
  deleteObject(objectId: string): Promise<void> {
    try {
      this.#checkOpen();
      return this.#removeWaiting(objectId) || this.removeBeside(objectId)
        ? Promise.resolve()
        : deleteInSteps(this, objectId);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Deletes a sealed object held here, in a lease store of this peer's own,
   * at once; see {@link PutsBeside.removeBeside}.
   *
   * @returns False when there is none such (nothing changes).
   */
  removeBeside(objectId: string): boolean {
    const holding = this.#objects.get(objectId);
    const leases = this.#leases;
    if (
      this.#closed || holding === undefined || !holding.sealed || this.#node !== undefined ||
      leases.removeSealed === undefined || isExpired(holding.info, this.#clock.now()) ||
      !leases.removeSealed(objectId)
    ) {
      return false;
    }
    this.#unlist(holding, objectId);
    return true;
  }

  async seal(leaseId: string): Promise<ObjectInfo> {
    this.#checkOpen();
    validateLeaseId(leaseId);
    const lease = await this.#leases.lease(leaseId);
    const holding = this.#held.get(leaseId);
    checkSealable(lease, holding?.sealed === true || holding?.sealing !== undefined);
    return await this.#seal(leaseId, holding ?? this.#holdingOf(leaseId));
  }

  /** Seals the object of a CREATE lease on `holding` that is not sealed nor being sealed. */
  async #seal(leaseId: string, holding: Holding): Promise<ObjectInfo> {
    closeViews(holding);
    const sealedAt = this.#clock.now();
    const sealing = this.#blobs.seal(holding.stored, {
      ...holding.info,
      state: "SEALED",
      sealedAt,
    });
    holding.sealing = sealing;
    try {
      await sealing;
      holding.sealed = true;
      const sealed = await this.#leases.seal(leaseId, { sealedAt });
      // A shared store may not keep the deadline; this peer does.
      const expiresAt = holding.info.expiresAt;
      const info = expiresAt === undefined || sealed.expiresAt !== undefined
        ? sealed
        : { ...sealed, expiresAt };
      holding.info = info;
      if (this.#mode === "cache" && !holding.removed) this.#touch(holding);
      if (this.#digest !== undefined) this.#digestLater(info.id, this.#digest);
      return info;
    } finally {
      holding.sealing = undefined;
    }
  }

  async discard(leaseId: string): Promise<void> {
    this.#checkOpen();
    validateLeaseId(leaseId);
    this.#ended(await this.#leases.discard(leaseId));
  }

  release(leaseId: string): Promise<void> {
    // A promise chain, not an async function: every get ends with a release.
    try {
      this.#checkOpen();
      validateLeaseId(leaseId);
      return this.#leases.release(leaseId).then(this.#endedBound);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async renew(leaseId: string, ttl?: number): Promise<Lease> {
    this.#checkOpen();
    validateLeaseId(leaseId);
    const given = validateTtl(ttl);
    const lease = await this.#leases.lease(leaseId);
    const next = given ?? lease.ttl;
    if (next === undefined) {
      throw new InvalidArgumentError(
        `Cannot renew lease ${leaseId}: it has no TTL and none was given`,
      );
    }
    return publicLease(await this.#leases.renew(leaseId, next, this.#clock.now()));
  }

  async stat(objectId: string): Promise<ObjectInfo> {
    this.#checkOpen();
    validateObjectId(objectId);
    const waiting = this.#waitingInfo(objectId);
    if (waiting !== undefined) return waiting;
    const info = await this.#leases.stat(objectId);
    if (info === undefined || this.#hasExpired(objectId)) {
      throw new NotFoundError(`No object: ${objectId}`);
    }
    return info;
  }

  async list(): Promise<ObjectInfo[]> {
    this.#checkOpen();
    let infos = await this.#leases.list();
    if (this.#mayHaveExpired()) infos = infos.filter((info) => !this.#hasExpired(info.id));
    if (this.#deferred.length === 0) return infos;
    const { list, inOrder } = await listInPutOrder(
      infos,
      this.#objects,
      this.#deferred,
      this.#unordered,
    );
    // Once none is out of put order (they were deleted), no sorting again.
    if (inOrder) this.#unordered = false;
    return list;
  }

  async listPage(options?: ListPageOptions): Promise<ListPage> {
    this.#checkOpen();
    const { after, limit } = listPageRequest(options ?? {});
    const ofStore = after?.lags !== undefined || after?.check !== undefined;
    if (ofStore && (this.#byOrder !== undefined || !this.#leases.listAfter)) {
      throw new InvalidArgumentError(
        "Invalid list cursor: a peer on a shared store made it, and this peer's list is its own; " +
          "pass the next of one of its pages",
      );
    }
    const runs = this.#byOrder !== undefined
      ? [this.#placedHere(this.#byOrder, after, limit), this.#placedInFlight(after, limit)]
      : [
        this.#leases.listAfter !== undefined
          ? await this.#placedInStore(after, limit)
          : await this.#placedInList(after, limit),
      ];
    // Waiting records are in put order, one place each: the first `limit + 1` after the cursor's place.
    for (const deferred of this.#deferred) {
      if (deferred.objects === 0) continue;
      const run: Placed[] = [];
      const from = after === undefined ? deferred.next(-1) : deferred.after(after.order);
      for (let at = from; at >= 0 && run.length <= limit; at = deferred.next(at)) {
        run.push({ order: deferred.order(at), info: deferred.infoAt(at) });
      }
      runs.push(run);
    }
    return pageOf(runs, limit);
  }

  /**
   * The candidates of a page from a lease store that keeps a put order of
   * its own (a shared one: the order of every peer on it), read from the
   * cursor on.
   */
  async #placedInStore(after: ListCursor | undefined, limit: number): Promise<Placed[]> {
    const placed: Placed[] = [];
    for (let from = after;;) {
      const ask = limit + 1 - placed.length;
      const read = await this.#leases.listAfter!(from, ask);
      for (const one of read) {
        // Past its deadline here and not removed yet: out of lists, as in list().
        if (!this.#mayHaveExpired() || !this.#hasExpired(one.info.id)) placed.push(one);
      }
      const last = read[read.length - 1];
      if (read.length < ask || placed.length > limit || last === undefined) return placed;
      from = cursorAfter(last);
    }
  }

  /** The candidates of a page among the puts in flight: see {@link BasePeer.#inFlight}. */
  #placedInFlight(after: ListCursor | undefined, limit: number): Placed[] {
    const placed: Placed[] = [];
    for (const [id, order] of this.#inFlight!) {
      const info = isAfter(order, id, after) ? this.#leases.statHere!(id) : undefined;
      if (info !== undefined) placed.push({ order, info });
    }
    if (placed.length <= limit + 1) return placed;
    return placed.sort((a, b) => a.order - b.order).slice(0, limit + 1);
  }

  /**
   * The candidates of a page from the lease store's whole list: a shared
   * store that keeps no put order of its own.
   */
  async #placedInList(after: ListCursor | undefined, limit: number): Promise<Placed[]> {
    let infos = await this.#leases.list();
    if (this.#mayHaveExpired()) infos = infos.filter((info) => !this.#hasExpired(info.id));
    const objects = this.#objects;
    const inFlight = this.#inFlight!;
    const orderOf = (info: ObjectInfo) => objects.get(info.id)?.order ?? inFlight.get(info.id);
    return placedAfter(infos, orderOf, after, limit);
  }

  /**
   * The candidates of a page from `index`, the holdings in put order, for a
   * lease store of this peer's own: it lists only what is held here.
   */
  #placedHere(index: OrderIndex, after: ListCursor | undefined, limit: number): Placed[] {
    const placed: Placed[] = [];
    const leases = this.#leases;
    for (const holding of index.from(after?.order ?? 0)) {
      const id = holding.info.id;
      if (!isAfter(holding.order, id, after) || this.#objects.get(id) !== holding) continue;
      const info = leases.statHere!(id);
      if (info === undefined || this.#mayHaveExpired() && this.#hasExpired(id)) continue;
      placed.push({ order: holding.order, info });
      if (placed.length > limit) break;
    }
    return placed;
  }

  async has(objectId: string): Promise<boolean> {
    this.#checkOpen();
    validateObjectId(objectId);
    if (this.#waitingInfo(objectId) !== undefined) return true;
    return (await this.#leases.stat(objectId)) !== undefined && !this.#hasExpired(objectId);
  }

  async stats(): Promise<PeerStats> {
    const counts = await this.#leases.counts();
    // Objects not taken in yet are counted, not taken in: a scrape of
    // metrics is no reason to make a JS object of each.
    let waiting = 0;
    for (const deferred of this.#deferred) waiting += deferred.objects;
    return {
      objects: counts.objects + waiting,
      leases: counts.leases + this.#besideLeases,
      bytes: this.#bytesHeld + this.#waitingBytes(),
      capacity: this.#blobs.capacity,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      expirations: this.#expirations,
    };
  }

  async recordDigest(leaseId: string, digest: string): Promise<void> {
    this.#checkOpen();
    validateLeaseId(leaseId);
    if (typeof digest !== "string" || digest.length === 0) {
      throw new InvalidArgumentError("Invalid digest: expected a non-empty string");
    }
    const lease = await this.#leases.lease(leaseId);
    const holding = this.#holdingOf(leaseId);
    if (!holding.sealed) {
      throw new NotSealedError(`Cannot record a digest of object ${lease.objectId}: not sealed`);
    }
    holding.info = { ...holding.info, digest };
    // A deleted or replaced incarnation keeps its digest to itself.
    if (this.#objects.get(lease.objectId) === holding) {
      await this.#leases.annotate(lease.objectId, { digest });
    }
  }

  /**
   * Removes a sealed object from this peer's lookups without asking the
   * lease store: for a copy whose shared record another node removed (a
   * cluster-wide delete). Its memory is freed when its last lease ends.
   *
   * @returns Whether this peer held the object.
   */
  forget(objectId: string): boolean {
    this.#takeIn(objectId);
    return this.#forfeit(objectId);
  }

  /**
   * Ends every lease whose TTL has passed by this peer's clock (an expired
   * CREATE lease discards its unfinished object), and removes the objects
   * whose deadline has come (see `objectDeadline`). Runs on timers too.
   *
   * @returns How many leases ended.
   */
  async sweep(): Promise<number> {
    // Objects not taken in yet have no TTL nor lease: nothing here is theirs.
    if (this.#closed) return 0;
    const ended = await this.#leases.expire(this.#clock.now());
    for (const end of ended) this.#ended(end);
    await this.#expireDue();
    return ended.length;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Let go of, never taken in: the store closes with its room.
    const deferred = this.#deferred;
    this.#deferred = [];
    for (const waiting of deferred) await waiting.discard();
    await Promise.all(this.#digesting);
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#deadlines.close();
    this.#recency.clear();
    this.#untouched.clear();
    const holdings = new Set([...this.#objects.values(), ...this.#held.values()]);
    this.#objects.clear();
    this.#byOrder?.clear();
    this.#held.clear();
    for (const holding of holdings) {
      closeViews(holding);
      await holding.sealing?.catch(() => {});
    }
    this.#bytesHeld = 0;
    await this.#leases.close();
    await this.#blobs.close();
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Figures for a metrics endpoint, from the lease store; see `Peer.metrics`.
   *
   * @returns The lease store's figures, such as a shared directory's conflicts.
   */
  metrics(): Promise<Readonly<Record<string, number>>> {
    return Promise.resolve(this.#leases.metrics?.() ?? {});
  }

  /**
   * Whether the bytes held here are the object the store records under their
   * id: a size, blob sizes or digest taken from the store but not matching
   * these bytes would be served with them. A copy that certainly differs is
   * dropped; a shared store that lists holders serves only from the holders it
   * has checked, so a copy not listed yet waits until it is.
   */
  #serves(holding: Holding, info: ObjectInfo): boolean {
    if (info === holding.info || !holding.sealed) return true;
    if (!sameContent(holding.info, info)) {
      this.#forfeit(info.id);
      this.#leases.conflict?.(holding.info, info);
      return false;
    }
    const holders = info.holders;
    if (holders === undefined || this.#node === undefined) return true;
    for (const holder of holders) if (holder.node === this.#node) return true;
    return false;
  }

  /** Drops the sealed copy held here of `objectId`, once its readers let go; whether there was one. */
  #forfeit(objectId: string): boolean {
    const holding = this.#objects.get(objectId);
    if (holding === undefined || !holding.sealed) return false;
    this.#unlist(holding, objectId);
    return true;
  }

  /** Takes `holding`, the incarnation of `objectId`, out of lookups; its bytes go once its last lease ends. */
  #unlist(holding: Holding, objectId: string): void {
    holding.removed = true;
    this.#recency.delete(holding);
    this.#untouched.delete(holding);
    this.#objects.delete(objectId);
    this.#byOrder?.delete(holding);
    for (const listener of this.#removed) listener(objectId);
    if (holding.refs === 0) this.#free(holding);
  }

  /** The digest of a sealed object held here, computed from its bytes when not known yet. */
  async #digestHeld(objectId: string): Promise<string | undefined> {
    const holding = this.#objects.get(objectId);
    if (holding === undefined || !holding.sealed) return undefined;
    if (holding.info.digest !== undefined || this.#digest === undefined) {
      return holding.info.digest;
    }
    // Counted as a reader, so the bytes stay while they are hashed.
    holding.refs++;
    try {
      for (const blob of holding.stored.blobs) await blob.settled?.();
      const digest = await this.#digest(holding.stored.blobs);
      holding.info = { ...holding.info, digest };
      return digest;
    } finally {
      holding.refs--;
      if (holding.removed && holding.refs === 0) this.#free(holding);
    }
  }

  /** Computes and records the digest of a sealed object under a READ lease of its own. */
  #digestLater(objectId: string, digest: (blobs: readonly Blob[]) => Promise<string>): void {
    const work = (async () => {
      const { lease, blobs } = await this.acquire(objectId, Access.READ);
      // This peer's own read, not a client's: no hit.
      this.#hits--;
      try {
        await this.recordDigest(lease.id, await digest(blobs));
      } finally {
        await this.release(lease.id);
      }
    })().catch(() => {
      // Deleted or closed meanwhile: the digest is computed on demand instead.
    }).finally(() => this.#digesting.delete(work));
    this.#digesting.add(work);
  }

  /**
   * Puts a holding of `info` in lookups, its place in put order `order`;
   * `untouched`: taken in from beside, where it was never read since.
   */
  #adopt(
    info: ObjectInfo,
    stored: StoredObject,
    order = ++this.#order,
    untouched = false,
  ): Holding {
    const holding: Holding = {
      info,
      stored,
      refs: 0,
      removed: false,
      sealed: info.state === "SEALED",
      views: undefined,
      sealing: undefined,
      freed: undefined,
      order,
      used: order,
    };
    this.#objects.set(info.id, holding);
    this.#byOrder?.add(holding);
    // Lookups list it after objects put since: lists sort them back.
    if (order < this.#newest) this.#unordered = true;
    else this.#newest = order;
    this.#bytesHeld += info.size;
    if (holding.sealed && this.#mode === "cache") {
      if (untouched) this.#untouched.add(holding);
      else this.#touch(holding);
    }
    if (info.expiresAt !== undefined) this.#deadlines.add(info.expiresAt, holding);
    return holding;
  }

  /**
   * Runs `allocate`; in cache mode, when it finds no room, drops the least
   * recently used idle objects until it does, or throws when dropping every
   * idle object would not make room.
   */
  async #withRoom(info: ObjectInfo, allocate: () => Promise<StoredObject>): Promise<StoredObject> {
    while (true) {
      try {
        return await allocate();
      } catch (error) {
        if (
          this.#mode !== "cache" || !(error instanceof CapacityExceededError) ||
          !await this.#evictFor(info.size)
        ) throw error;
      }
    }
  }

  /**
   * Drops idle sealed objects, least recently read first, until `size` more
   * bytes fit in the blob store, and waits until their bytes are freed.
   *
   * @returns Whether any was dropped; false when all of them would not make room.
   */
  async #evictFor(size: number): Promise<boolean> {
    const { capacity, used } = this.#blobs;
    if (size > capacity) return false;
    // Objects stored beside and not taken in use room too, and are candidates.
    const victims = evictionVictims(
      used + this.#waitingBytes() + size - capacity,
      this.#recency,
      this.#untouched,
      this.#objects,
      this.#deferred,
    );
    let dropped = 0;
    for (const victim of victims) {
      if (!("stored" in victim)) {
        // Never taken in: it goes at once, with no lease, its room with it.
        if (!victim.deferred.remove(victim.info.id)) continue;
        this.#evictedOne(victim.info);
        for (const listener of this.#removed) listener(victim.info.id);
      } else if (await this.#remove(victim)) {
        this.#evictedOne(victim.info);
        await victim.freed;
      } else {
        continue;
      }
      dropped++;
    }
    return dropped > 0;
  }

  /** Counts an object dropped to make room, and tells listeners. */
  #evictedOne(info: ObjectInfo): void {
    this.#evictions++;
    for (const listener of this.#evicted) listener(info);
  }

  /**
   * Removes an incarnation from lookups as a delete does, through a WRITE
   * lease of its own, unless it is no longer the current one. Its bytes are
   * freed once its readers let go.
   */
  async #remove(holding: Holding): Promise<boolean> {
    const id = holding.info.id;
    if (this.#objects.get(id) !== holding) return false;
    const lease = leaseRecord(newId(), id, Access.WRITE, undefined, this.#clock.now(), this.#node);
    try {
      await this.#leases.grant(id, lease);
    } catch {
      return false; // Deleted meanwhile.
    }
    if (this.#objects.get(id) !== holding || this.#closed) {
      await this.#leases.release(lease.id).catch(() => {});
      return false;
    }
    this.#count(holding, lease);
    try {
      this.#ended(await this.#leases.discard(lease.id));
      return true;
    } catch {
      await this.release(lease.id).catch(() => {});
      return false;
    }
  }

  /** Whether the object under `objectId` held here has passed its deadline; starts its removal. */
  #hasExpired(objectId: string): boolean {
    const holding = this.#objects.get(objectId);
    if (holding === undefined || !isExpired(holding.info, this.#clock.now())) return false;
    this.#expireDue().catch(() => {});
    return true;
  }

  /** Removes every object whose deadline has come, then waits for the next. */
  async #expireDue(): Promise<void> {
    const due = this.#deadlines.due();
    this.#expiring += due.length;
    try {
      for (const holding of due) {
        if (!holding.removed && await this.#remove(holding)) this.#expirations++;
      }
    } finally {
      this.#expiring -= due.length;
    }
  }

  /** Whether an object here may be past its deadline: lists then check each. */
  #mayHaveExpired(): boolean {
    return this.#deadlines.size > 0 || this.#expiring > 0;
  }

  /** Records a new lease on `holding`. */
  #count(holding: Holding, lease: LeaseRecord): void {
    holding.refs++;
    this.#held.set(lease.id, holding);
  }

  /** The lease and its blobs, for a lease already counted on `holding`. */
  #hand(holding: Holding, lease: LeaseRecord, info: ObjectInfo): Acquired {
    const stored = holding.stored.blobs;
    const blobs = new Array<LeasedBlob>(stored.length);
    for (let i = 0; i < stored.length; i++) {
      blobs[i] = new LeasedBlob(stored[i]!, lease, holding, this.#held);
    }
    return { lease: publicLease(lease), object: info, blobs };
  }

  #holdingOf(leaseId: string): Holding {
    const holding = this.#held.get(leaseId);
    if (holding === undefined) {
      throw new UnknownLeaseError(`Lease ${leaseId} was not granted by this peer`);
    }
    return holding;
  }

  #ended(end: LeaseEnd): void {
    const holding = this.#held.get(end.lease.id);
    if (end.removed !== undefined) {
      const current = this.#objects.get(end.removed.id);
      const target = holding ?? current;
      if (target !== undefined && (holding === undefined || current === holding)) {
        this.#unlist(target, end.removed.id);
      }
    }
    if (holding === undefined) return;
    this.#held.delete(end.lease.id);
    closeLeaseViews(holding, end.lease.id);
    holding.refs--;
    if (holding.removed && holding.refs === 0) this.#free(holding);
  }

  #free(holding: Holding): void {
    closeViews(holding);
    this.#bytesHeld -= holding.info.size;
    if (holding.sealing === undefined && this.#blobs.freeNow?.(holding.stored) === true) {
      holding.freed = FREED;
      return;
    }
    const free = () => this.#blobs.free(holding.stored);
    holding.freed = (holding.sealing ? holding.sealing.then(free, free) : free()).catch(() => {});
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError("Peer is closed");
  }

  /** Makes `holding` the most recently used, in cache mode's order. */
  #touch(holding: Holding): void {
    holding.used = ++this.#order;
    this.#recency.touch(holding);
  }

  /** Makes `holding` the most recently used when it is in cache mode's order. */
  #refresh(holding: Holding): void {
    holding.used = ++this.#order;
    if (this.#untouched.size > 0 && this.#untouched.delete(holding)) this.#recency.touch(holding);
    else this.#recency.refresh(holding);
  }

  /**
   * Takes in the object `objectId` stored beside this peer, if it waits:
   * before anything that needs it as an object here (a lease on it, a put of
   * its id). Objects here are never waiting as well.
   */
  #takeIn(objectId: unknown): void {
    const deferred = this.#deferred;
    if (deferred.length === 0 || typeof objectId !== "string") return;
    for (const waiting of deferred) {
      if (waiting.objects > 0 && !this.#objects.has(objectId)) waiting.adoptOne(objectId);
    }
  }

  /** The info of the object `objectId` stored beside this peer and waiting; undefined when none waits. */
  #waitingInfo(objectId: string): ObjectInfo | undefined {
    const deferred = this.#deferred;
    if (deferred.length === 0 || this.#objects.has(objectId)) return undefined;
    for (const waiting of deferred) {
      const info = waiting.objects > 0 ? waiting.info(objectId) : undefined;
      if (info !== undefined) return info;
    }
    return undefined;
  }

  /** Deletes the object `objectId` stored beside this peer and waiting, if there is one. */
  #removeWaiting(objectId: string): boolean {
    const deferred = this.#deferred;
    if (deferred.length === 0 || typeof objectId !== "string" || this.#objects.has(objectId)) {
      return false;
    }
    for (const waiting of deferred) {
      if (waiting.objects > 0 && waiting.remove(objectId)) {
        for (const listener of this.#removed) listener(objectId);
        return true;
      }
    }
    return false;
  }

  /** Bytes of the objects stored beside this peer and waiting. */
  #waitingBytes(): number {
    let bytes = 0;
    for (const waiting of this.#deferred) bytes += waiting.bytes;
    return bytes;
  }
}

/** What {@link Holding.freed} is once bytes were freed at once. */
const FREED: Promise<void> = Promise.resolve();

/** What the reads beside a peer's leases change in it: see {@link ReadsBeside}. */
interface BesideCounter {
  hold(holding: Holding, delta: number): void;
  read(holding: Holding, count: number): void;
}

/** The counts of reads beside a peer's leases of one incarnation: one object per incarnation. */
class HoldingReads implements BesideReads {
  readonly #holding: Holding;
  readonly #counter: BesideCounter;

  constructor(holding: Holding, counter: BesideCounter) {
    this.#holding = holding;
    this.#counter = counter;
  }

  hold(delta: number): void {
    this.#counter.hold(this.#holding, delta);
  }

  read(count: number): void {
    this.#counter.read(this.#holding, count);
  }
}
