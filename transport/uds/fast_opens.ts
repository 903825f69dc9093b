/**
 * The native fast path of a `UdsServer`'s gets (native/packice.c, section
 * 12): the C library reads each client's messages and answers their OPENs
 * (READ leases, with a TTL or not) of objects registered here with READ
 * leases of its own, and ends those leases when the client releases them,
 * with no JS run per get. Every other frame comes to the server's JS as
 * before, in its order, so refusals stay the same typed errors (pipelined
 * requests are under way at once either way; their replies name their ids).
 *
 * Which objects it answers for is decided here: an object is registered when
 * the server's JS has granted an OPEN of it (a sealed object of one memfd,
 * read once), and leaves the table the moment it leaves the peer's lookups
 * (deleted, evicted, expired: `RemovalEvents`), so a removed object is never
 * answered from the table. The peer keeps counting readers and reads
 * (`ReadsBeside`): an object with a lease granted in C is one reader more of
 * its incarnation, so its bytes stay until the last such lease ends and it is
 * never idle meanwhile; each read counts as a hit. The counts change only in
 * calls made here, on the JS thread, and each such call drains them at once.
 *
 * Lease ids granted in C are `n` + 8 hex + `-` + 14 hex: never a UUID, as
 * the peer's are. C keeps their deadlines (a TTL, a renew); a sweep each
 * second ends those past theirs, on the peer's clock, as the peer's does.
 *
 * Where the peer takes objects stored beside it (`PutsBeside`), C answers
 * plain small PUTs too (native/packice.c, section 13), in room the peer lent
 * it: each object is in this table at once, and its record is kept right
 * after the receive that stored it (`#takePuts`, `PendingPuts`), with no JS
 * object made for it. The peer takes it in only when something of its needs
 * it: anything of the peer's that reads or changes its lookups, counts, room
 * or recency order takes in every such object first
 * (`PutsBeside.deferAdoption`), and so does a drain (reads in C count on
 * objects the peer holds) and the server's closing (they outlive it). So no
 * JS ever sees a put answered and not held. DELETEs of those objects are
 * answered in C too: out of C's lookups at once, and right after that
 * receive (`#takeDeletes`) out of the peer's, or, for one never taken in, its
 * record dropped, its room given back and the peer's removal listeners told.
 *
 * @module
 */
import {
  ClosedError,
  InvalidArgumentError,
  LeaseExpiredError,
  UnknownLeaseError,
} from "../../core/errors.ts";
import { Access, type Lease } from "../../core/lease.ts";
import type { ObjectInfo } from "../../core/object.ts";
import {
  type Acquired,
  type BesideBytes,
  type BesideReads,
  type DeferredAdoption,
  offersPutsBeside,
  offersReadsBeside,
  type Peer,
  type PutsBeside,
  type ReadsBeside,
  type RemovalEvents,
} from "../../core/peer.ts";
import { deleteObject } from "../../core/delete_in_steps.ts";
import { check, Errno } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import type { UdsMetrics } from "./metrics.ts";
import { PendingPuts } from "./pending_puts.ts";
import { Op } from "./protocol.ts";

/**
 * The most objects registered at once: each holds a duplicate of its memfd,
 * so at most this many, and a quarter of the process's file descriptors.
 */
const MAX_OBJECTS = 65_536;
/** Events one drain call reports. */
const EVENTS = 256;
/** How often leases given a deadline by a renew are checked, in milliseconds. */
const SWEEP_MS = 1000;
/**
 * Sweeps without a put after which the memory of objects stored in C goes
 * back to the kernel, once none is left: ten seconds, as jemalloc's default
 * decay of unused pages, so a cache that turns its objects over keeps
 * reusing pages it has faulted in.
 */
const TRIM_SWEEPS = 10;
/** The length of the id of an object stored in C: a UUID. */
const UUID_LENGTH = 36;
/** The length of a lease id granted in C. */
const LEASE_LENGTH = 24;
/** The event flag of a drain (native/packice.c): the slot is free again. */
const FREED = 1;
/** Room lent to C for small puts at a time; lent again once half of it is used. */
const LEND_BYTES = 4 * 1024 * 1024;
/** Records (or slots) one call of `pk_fp_take_puts` (or `pk_fp_take_deletes`) takes. */
const PUTS = 256;
/** Bytes and fds of replies C could not send (the socket was full), for the queue. */
const SPILL_BYTES = 64 * 1024;
const SPILL_FDS = 253;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An object answered for in C: its id, the peer's counts of its incarnation, and its serial. */
interface Registered {
  readonly id: string;
  readonly reads: BesideReads;
  /** The info the peer granted its reads with when it was registered. */
  readonly object: ObjectInfo;
  /** What OPEN replies call it, as C answers them. */
  readonly serial: number;
  /** Stored in C (a small put): not one of the memfds JS registered. */
  readonly put: boolean;
}

/** Where a connection of the fast path queues replies that C could not send. */
export interface SpillTarget {
  /** Queues a message to send once the socket takes it; takes over `fds`. */
  enqueue(bytes: Uint8Array, fds: number[]): void;
}

/** The table of objects a server's C answers gets of, and its counts in the peer. */
export class FastOpens {
  readonly #native: Native;
  readonly #peer: Peer & ReadsBeside & RemovalEvents;
  /** The peer, when C answers small puts for it. */
  readonly #puts: (Peer & PutsBeside) | undefined;
  readonly #maxObjects: number;
  #handle: Deno.PointerValue;
  /** The object of each slot (C's numbers), until C has freed the slot. */
  readonly #slots: Array<Registered | undefined> = [];
  /** The slot of each object in lookups. */
  readonly #byId = new Map<string, number>();
  /** Objects registered by JS (each a memfd held in C), in lookups or still read. */
  #offered = 0;
  readonly #slotOut = new Uint32Array(1);
  /** Room lent to C for small puts and not used yet. */
  #lent = 0;
  /** C has been told its room (and its limit of memfds) once. */
  #lentOnce = false;
  /** Objects stored in C since the last sweep. */
  #stored = 0;
  /** Sweeps in a row that saw no object stored in C. */
  #idleSweeps = 0;
  /** Objects stored in C that the peer has not taken in yet. */
  readonly #pending = new PendingPuts();
  /** The same for the peer, which has them taken in before anything that needs them. */
  readonly #deferred = deferred(
    this.#pending,
    () => this.#adoptAll(),
    (id) => this.#adoptOne(id),
  );
  /** An id being looked up in C, as bytes. */
  readonly #idBytes = new Uint8Array(UUID_LENGTH);
  readonly #reclaim = (bytes: number) => this.#takeBackRoom(bytes);
  readonly #deleted = new Uint32Array(PUTS);
  readonly #events = new Uint32Array(EVENTS * 4);
  /** The same events, for the change in readers, which may be negative. */
  readonly #changes = new Int32Array(this.#events.buffer);
  readonly #stopRemovals: () => void;
  readonly #sweeper: ReturnType<typeof setInterval>;
  #connections = 0;
  /** Closing was asked for while connections were still open: done when the last goes. */
  #closing = false;

  /**
   * The fast path for `peer`, or undefined when the peer does not count
   * reads served beside its leases.
   *
   * @param fds The process's limit of open files.
   */
  static start(native: Native, peer: Peer, fds: number): FastOpens | undefined {
    if (!offersReadsBeside(peer)) return undefined;
    return new FastOpens(native, peer, Math.min(MAX_OBJECTS, Math.floor(fds / 4)));
  }

  private constructor(
    native: Native,
    peer: Peer & ReadsBeside & RemovalEvents,
    maxObjects: number,
  ) {
    this.#native = native;
    this.#peer = peer;
    this.#puts = offersPutsBeside(peer) ? peer : undefined;
    this.#maxObjects = maxObjects;
    const out = new BigUint64Array(1);
    check(native.symbols.pk_fp_create(out), "create the Unix-socket fast path");
    this.#handle = Deno.UnsafePointer.create(out[0]!);
    this.#stopRemovals = peer.onRemove((id) => this.#removed(id));
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
    Deno.unrefTimer(this.#sweeper);
    this.#puts?.deferAdoption(this.#deferred);
    this.#lend();
  }

  /** The peer's clock, which decides deadlines in C too. */
  now(): number {
    return this.#peer.clock.now();
  }

  /** How many objects are answered for in C now. */
  get size(): number {
    return this.#byId.size + this.#pending.count;
  }

  /**
   * Answers OPENs of the object of `acquired` in C from now on, if it is a
   * sealed object of one memfd in the peer's lookups. Call it while the lease
   * of `acquired` holds it.
   *
   * @returns The serial that OPEN replies call it by, from C and from the
   *   server's JS alike; undefined when it is not answered in C.
   */
  offer(acquired: Acquired): number | undefined {
    const handle = this.#handle;
    const object = acquired.object;
    if (handle === null || this.#closing) return undefined;
    const known = this.#byId.get(object.id);
    if (known !== undefined) {
      const registered = this.#slots[known]!;
      return registered.object === object ? registered.serial : undefined;
    }
    if (acquired.blobs.length !== 1 || this.#offered >= this.#maxObjects) return undefined;
    const reads = this.#peer.readsBeside(acquired.lease.id);
    if (reads === undefined) return undefined;
    let fd: number | undefined;
    try {
      fd = acquired.blobs[0]!.fd;
    } catch {
      return undefined; // Ended meanwhile.
    }
    if (fd === undefined) return undefined;
    const id = encoder.encode(object.id);
    const text = encoder.encode(JSON.stringify(object));
    const result = this.#native.symbols.pk_fp_put(
      handle,
      id,
      id.length,
      fd,
      BigInt(object.size),
      text,
      text.length,
      object.expiresAt ?? 0,
      this.#slotOut,
    );
    // Too long an info, or out of fds or memory: the JS path keeps serving it.
    if (result < 0) return undefined;
    const serial = (0x8000_0000 | result) >>> 0;
    const slot = this.#slotOut[0]!;
    this.#slots[slot] = { id: object.id, reads, object, serial, put: false };
    this.#byId.set(object.id, slot);
    this.#offered++;
    return serial;
  }

  /**
   * A connection's state in C, for the socket `fd`.
   *
   * @param spill Where replies that C could not send are queued.
   * @param metrics Where what C answers is counted.
   */
  connect(fd: number, spill: SpillTarget, metrics: UdsMetrics): FastConnection {
    if (this.#handle === null) throw new Error("The Unix-socket fast path is closed");
    const out = new BigUint64Array(1);
    check(this.#native.symbols.pk_fp_conn_open(this.#handle, fd, out), "open a fast connection");
    this.#connections++;
    const handle = Deno.UnsafePointer.create(out[0]!)!;
    return new FastConnection(this, this.#native, handle, spill, metrics);
  }

  /** @internal A connection has ended: its leases ended with it. */
  disconnected(): void {
    this.#connections--;
    this.drain();
    if (this.#closing && this.#connections === 0) this.close();
  }

  /** Applies the counts C changed to the peer: readers, reads; and frees slots. */
  drain(): void {
    const handle = this.#handle;
    if (handle === null) return;
    const events = this.#events;
    const pending = this.#pending;
    for (;;) {
      const count = this.#native.symbols.pk_fp_drain(handle, events, EVENTS);
      for (let i = 0; i < count; i++) {
        const slot = events[4 * i]!;
        // Counts of an object not taken in yet go to its own: the peer takes in what that needs.
        const at = pending.indexOf(slot);
        if (at >= 0) this.#puts?.adoptFor(pending.id(at));
        const change = this.#changes[4 * i + 1]!;
        const reads = events[4 * i + 2]!;
        const registered = this.#slots[slot];
        if (registered === undefined) continue;
        if (change !== 0) registered.reads.hold(change);
        if (reads > 0) registered.reads.read(reads);
        if (events[4 * i + 3]! & FREED) this.#freed(slot);
      }
      if (count < EVENTS) return;
    }
  }

  /**
   * Stops answering in C and frees the table. Call it once every connection
   * has closed (their leases end with them). Idempotent.
   */
  close(): void {
    const handle = this.#handle;
    if (handle === null) return;
    // Nothing is answered in C from here on; the last connection's end frees the table.
    this.#closing = true;
    // Objects stored in C outlive the server: the peer takes them in now.
    this.#adoptAll();
    this.#puts?.deferAdoption(undefined);
    this.#puts?.returnRoom(this.#takeBackRoom());
    for (const slot of this.#byId.values()) {
      if (this.#native.symbols.pk_fp_remove(handle, slot) === 1) this.#freed(slot);
    }
    this.#byId.clear();
    this.drain();
    if (this.#connections > 0) return;
    clearInterval(this.#sweeper);
    this.#stopRemovals();
    this.#handle = null;
    // Objects stored in C that the peer still holds keep the table until it lets go of them.
    check(this.#native.symbols.pk_fp_close(handle), "close the Unix-socket fast path");
  }

  /**
   * Keeps the records of the objects C stored for PUTs of the last receive
   * (the peer takes them in when it needs them), takes its deletes in, and
   * lends C room again once half of it is used (or was taken back: when the
   * peer has none free, it tries again at each receive, which costs it a
   * few comparisons).
   *
   * @param puts How many PUTs C answered in the last receive.
   * @param deletes How many DELETEs C answered in the last receive.
   */
  received(puts: number, deletes: number): void {
    if (puts > 0) {
      this.#stored += puts;
      this.#takePuts();
    }
    // Closing, the peer takes in what C stored at once: it asks no more.
    if (this.#closing) this.#adoptAll();
    if (deletes > 0) this.#takeDeletes();
    if (this.#puts !== undefined && this.#lent < LEND_BYTES / 2) this.#lend();
  }

  /** @internal The peer let go of the bytes of the object stored in C in `slot`. */
  unheld(slot: number, result: number): void {
    if (result === 1) this.#freed(slot);
  }

  /** Keeps the records of the objects C stored, for the peer to take in when it needs them. */
  #takePuts(): void {
    const handle = this.#handle;
    if (handle === null || this.#puts === undefined) return;
    const take = this.#native.symbols.pk_fp_take_puts;
    const pending = this.#pending;
    for (;;) {
      const count = take(handle, pending.room(PUTS), PUTS);
      this.#lent -= pending.appended(count);
      if (count < PUTS) return;
    }
  }

  /** Takes in every object stored in C that the peer has not, in the order they were put. */
  #adoptAll(): void {
    const pending = this.#pending;
    const handle = this.#handle;
    const peer = this.#puts;
    if (pending.count === 0 || handle === null || peer === undefined) return;
    pending.take((i) =>
      this.#adopt(
        handle,
        peer,
        pending.slot(i),
        pending.size(i),
        pending.id(i),
        pending.createdAt(i),
        pending.serial(i),
      )
    );
  }

  /** Takes in the object stored in C with id `objectId`, if the peer has not yet. */
  #adoptOne(objectId: string): void {
    const pending = this.#pending;
    const handle = this.#handle;
    const peer = this.#puts;
    if (pending.count === 0 || handle === null || peer === undefined) return;
    if (objectId.length !== UUID_LENGTH) return;
    const idBytes = this.#idBytes;
    if (encoder.encodeInto(objectId, idBytes).written !== UUID_LENGTH) return;
    const slot = this.#native.symbols.pk_fp_slot_of(handle, idBytes, UUID_LENGTH);
    const at = slot < 0 ? -1 : pending.indexOf(slot);
    if (at < 0) return;
    const size = pending.size(at);
    const createdAt = pending.createdAt(at);
    const serial = pending.serial(at);
    pending.drop(at);
    this.#adopt(handle, peer, slot, size, objectId, createdAt, serial);
  }

  /** Has the peer take in the object stored in C in `slot`, and answers for it here as the peer's. */
  #adopt(
    handle: NonNullable<Deno.PointerValue>,
    peer: Peer & PutsBeside,
    slot: number,
    size: number,
    id: string,
    createdAt: number,
    serial: number,
  ): void {
    const symbols = this.#native.symbols;
    const bytes = new StoredInC(this, symbols, handle, slot);
    const object = putInfo(id, size, createdAt);
    const reads = peer.adoptBeside(object, bytes);
    if (reads === undefined) {
      // Closed meanwhile, or a UUID taken: the object goes, and its room back.
      peer.returnRoom(size);
      symbols.pk_fp_remove(handle, slot);
      bytes.release();
      return;
    }
    this.#slots[slot] = { id, reads, object, serial, put: true };
    this.#byId.set(id, slot);
  }

  /** Takes the objects C deleted out of the peer's lookups. */
  #takeDeletes(): void {
    const handle = this.#handle;
    const peer = this.#puts;
    if (handle === null || peer === undefined) return;
    const slots = this.#deleted;
    const pending = this.#pending;
    for (;;) {
      const count = this.#native.symbols.pk_fp_take_deletes(handle, slots, PUTS);
      for (let i = 0; i < count; i++) {
        const slot = slots[i]!;
        const at = pending.indexOf(slot);
        if (at >= 0) {
          // Never taken in: its room back, its bytes let go, and listeners told.
          const size = pending.size(at);
          const id = pending.id(at);
          pending.drop(at);
          peer.returnRoom(size);
          this.unheld(slot, this.#native.symbols.pk_fp_unhold(handle, slot));
          peer.removedBeside(id);
          continue;
        }
        const registered = this.#slots[slot];
        if (registered === undefined) continue;
        // Out of C's lookups already: the peer's removal event finds nothing to do here.
        this.#byId.delete(registered.id);
        // Always taken at once: a sealed object of the peer's own, with no TTL.
        if (!peer.removeBeside(registered.id)) void deleteObject(peer, registered.id).catch(noop);
      }
      if (count < PUTS) return;
    }
  }

  /** Lends C room for small puts, up to {@link LEND_BYTES} in all. */
  #lend(): void {
    const handle = this.#handle;
    const peer = this.#puts;
    if (handle === null || peer === undefined || this.#closing) return;
    const lent = peer.lendRoom(LEND_BYTES - this.#lent, this.#reclaim);
    if (lent === 0 && this.#lentOnce) return;
    this.#lentOnce = true;
    this.#lent += lent;
    this.#native.symbols.pk_fp_budget(handle, this.#lent, this.#maxObjects, 1);
  }

  /** Takes back up to `bytes` of the room C was lent (all by default); returns how many. */
  #takeBackRoom(bytes = Infinity): number {
    const taken = Math.min(bytes, this.#lent);
    this.#lent -= taken;
    if (this.#handle !== null) {
      const deletes = this.#puts !== undefined && !this.#closing ? 1 : 0;
      this.#native.symbols.pk_fp_budget(this.#handle, this.#lent, this.#maxObjects, deletes);
    }
    return taken;
  }

  /** C has freed `slot`: it may name another object from now on. */
  #freed(slot: number): void {
    const registered = this.#slots[slot];
    if (registered === undefined) return;
    this.#slots[slot] = undefined;
    if (!registered.put) this.#offered--;
  }

  #removed(id: string): void {
    const slot = this.#byId.get(id);
    if (slot === undefined || this.#handle === null) return;
    this.#byId.delete(id);
    if (this.#native.symbols.pk_fp_remove(this.#handle, slot) === 1) this.#freed(slot);
    this.drain();
  }

  #sweep(): void {
    if (this.#handle === null) return;
    if (this.#native.symbols.pk_fp_expire(this.#handle, this.now()) > 0) this.drain();
    this.#idleSweeps = this.#stored === 0 ? this.#idleSweeps + 1 : 0;
    this.#stored = 0;
    // Puts have paused: the memory of those stored in C goes back, if none is left.
    if (this.#idleSweeps >= TRIM_SWEEPS) this.#native.symbols.pk_fp_trim(this.#handle);
  }
}

/** One connection of the fast path: what C answers of its messages, and its leases there. */
export class FastConnection {
  /** Bytes of the frames left to JS, at the buffer's start, of the last message received. */
  kept = 0;
  readonly #fast: FastOpens;
  readonly #native: Native;
  readonly #handle: NonNullable<Deno.PointerValue>;
  readonly #spill: SpillTarget;
  readonly #metrics: UdsMetrics;
  readonly #out = new Float64Array(14);
  #closed = false;

  constructor(
    fast: FastOpens,
    native: Native,
    handle: NonNullable<Deno.PointerValue>,
    spill: SpillTarget,
    metrics: UdsMetrics,
  ) {
    this.#fast = fast;
    this.#native = native;
    this.#handle = handle;
    this.#spill = spill;
    this.#metrics = metrics;
  }

  /**
   * Receives one message as `pk_recvmsg` does, after C has answered the
   * frames it can (counted in the server's metrics): the others are the
   * first {@link FastConnection.kept} bytes of `buffer`, in their order.
   */
  receive(
    buffer: Uint8Array,
    capacity: bigint,
    fds: Int32Array,
    maxFds: number,
    count: Int32Array,
    flags: Int32Array,
  ): number {
    const out = this.#out;
    const { spillBytes, spillFds } = spillBuffers();
    const result = Number(
      this.#native.symbols.pk_fp_recv(
        this.#handle,
        buffer,
        capacity,
        fds,
        maxFds,
        count,
        flags,
        this.#fast.now(),
        spillBytes,
        spillFds,
        out,
      ),
    );
    this.kept = out[0]!;
    const opens = out[1]!;
    const releases = out[3]!;
    const puts = out[9]!;
    const deletes = out[12]!;
    // Before anything else: no JS may see a put or delete answered and not the peer's.
    this.#fast.received(puts, deletes);
    if (opens === 0 && releases === 0 && puts === 0 && deletes === 0) return result;
    const metrics = this.#metrics;
    if (deletes > 0) {
      metrics.requests[Op.DELETE]! += deletes;
      metrics.nativeDeletes += deletes;
      metrics.requestBytes[Op.DELETE]! += out[13]!;
    }
    if (puts > 0) {
      metrics.requests[Op.PUT]! += puts;
      metrics.nativePuts += puts;
      metrics.requestBytes[Op.PUT]! += out[10]!;
      metrics.writtenBytes += out[11]!;
    }
    metrics.requests[Op.OPEN]! += opens;
    metrics.nativeOpens += opens;
    metrics.requestBytes[Op.OPEN]! += out[2]!;
    metrics.requests[Op.RELEASE]! += releases;
    metrics.requestBytes[Op.RELEASE]! += out[4]!;
    metrics.readBytes += out[5]!;
    metrics.sent += out[6]!;
    if (out[7]! > 0) {
      const held: number[] = [];
      for (let i = 0; i < out[8]!; i++) held.push(spillFds[i]!);
      this.#spill.enqueue(spillBytes.slice(0, out[7]!), held);
    }
    // Only leases change the counts C keeps: puts and deletes leave none to drain.
    if (opens > 0 || releases > 0) this.#fast.drain();
    return result;
  }

  /**
   * Ends a lease granted in C on this connection.
   *
   * @returns Whether it was one: false for any other id.
   * @throws {LeaseExpiredError} When it had expired (it has ended).
   */
  release(leaseId: string): boolean {
    if (this.#closed || !grantedInC(leaseId)) return false;
    const id = encoder.encode(leaseId);
    const result = this.#native.symbols.pk_fp_release(
      this.#handle,
      id,
      id.length,
      this.#fast.now(),
    );
    if (result !== -Errno.ENOENT) this.#fast.drain();
    if (result === -Errno.ETIMEDOUT) throw new LeaseExpiredError(`Lease ${leaseId} has expired`);
    return result === 0;
  }

  /**
   * Whether `leaseId` is a lease granted in C on this connection that holds.
   *
   * @throws {LeaseExpiredError} When it had expired (it has ended).
   */
  holds(leaseId: string): boolean {
    if (this.#closed || !grantedInC(leaseId)) return false;
    const id = encoder.encode(leaseId);
    const result = this.#native.symbols.pk_fp_holds(this.#handle, id, id.length, this.#fast.now());
    if (result === -Errno.ETIMEDOUT) {
      this.#fast.drain();
      throw new LeaseExpiredError(`Lease ${leaseId} has expired`);
    }
    return result === 0;
  }

  /**
   * Gives a lease granted in C on this connection a deadline `ttl` from now,
   * or its own TTL again.
   *
   * @returns The lease; undefined for an id not granted in C.
   * @throws {UnknownLeaseError} When it names no lease of this connection.
   * @throws {LeaseExpiredError} When it had expired.
   * @throws {InvalidArgumentError} When it has no TTL and none is given.
   */
  renew(leaseId: string, ttl: number | undefined): Lease | undefined {
    if (!grantedInC(leaseId)) return undefined;
    const id = encoder.encode(leaseId);
    const room = new Uint8Array(4096);
    const given = new Float64Array(1);
    const now = this.#fast.now();
    const result = this.#closed ? -Errno.ENOENT : this.#native.symbols.pk_fp_renew(
      this.#handle,
      id,
      id.length,
      ttl ?? 0,
      now,
      room,
      room.length,
      given,
    );
    if (result === -Errno.ETIMEDOUT) {
      this.#fast.drain();
      throw new LeaseExpiredError(`Lease ${leaseId} has expired`);
    }
    if (result === -Errno.EINVAL) {
      throw new InvalidArgumentError(
        `Cannot renew lease ${leaseId}: it has no TTL and none was given`,
      );
    }
    if (result < 0) {
      throw new UnknownLeaseError(`Lease ${leaseId} was not granted on this connection`);
    }
    const objectId = decoder.decode(room.subarray(0, result));
    const next = given[0]!;
    return { id: leaseId, objectId, access: Access.READ, ttl: next, expiresAt: now + next };
  }

  /** Ends the connection's leases in C. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.symbols.pk_fp_conn_close(this.#handle);
    this.#fast.disconnected();
  }
}

/** The bytes of an object C stored for a PUT, the peer's until it lets go (`BesideBytes`). */
class StoredInC implements BesideBytes {
  readonly #fast: FastOpens;
  readonly #symbols: Native["symbols"];
  /** The table, which C keeps until the last such object is let go. */
  readonly #handle: NonNullable<Deno.PointerValue>;
  readonly #slot: number;
  #released = false;

  constructor(
    fast: FastOpens,
    symbols: Native["symbols"],
    handle: NonNullable<Deno.PointerValue>,
    slot: number,
  ) {
    this.#fast = fast;
    this.#symbols = symbols;
    this.#handle = handle;
    this.#slot = slot;
  }

  copy(offset: number, into: Uint8Array): void {
    this.#live();
    check(
      this.#symbols.pk_fp_copy(this.#handle, this.#slot, BigInt(offset), into, BigInt(into.length)),
      "copy an object stored in C",
    );
  }

  memfd(): number {
    this.#live();
    return check(this.#symbols.pk_fp_memfd(this.#handle, this.#slot), "make a memfd");
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#fast.unheld(this.#slot, this.#symbols.pk_fp_unhold(this.#handle, this.#slot));
  }

  #live(): void {
    if (this.#released) throw new ClosedError("Cannot use an object stored in C: released");
  }
}

function noop(): void {}

/** What the peer sees of `pending`: their counts, and functions that have them taken in. */
function deferred(
  pending: PendingPuts,
  adopt: () => void,
  adoptOne: (objectId: string) => void,
): DeferredAdoption {
  return {
    adopt,
    adoptOne,
    get objects(): number {
      return pending.count;
    },
    get bytes(): number {
      return pending.bytes;
    },
  };
}

/** Metadata of objects stored in C: none, one object for all. */
const NO_META = Object.freeze({});
/** Blob sizes of objects stored in C, one array for each size. */
const blobSizes = new Map<number, readonly number[]>();
const MAX_SIZES = 1024;

/**
 * The info of an object C stored for a PUT: what its reply said, the fields
 * in the order a put's seal leaves them (see `pk_fp_put_info`).
 */
function putInfo(id: string, size: number, at: number): ObjectInfo {
  let sizes = blobSizes.get(size);
  if (sizes === undefined) {
    sizes = Object.freeze([size]);
    if (blobSizes.size < MAX_SIZES) blobSizes.set(size, sizes);
  }
  return {
    id,
    state: "SEALED",
    size,
    blobSizes: sizes,
    meta: NO_META,
    createdAt: at,
    sealedAt: at,
  };
}

/** Whether a lease id has the form of those granted in C. */
function grantedInC(leaseId: string): boolean {
  return leaseId.length === LEASE_LENGTH && leaseId.charCodeAt(0) === 0x6e;
}

let spill: { spillBytes: Uint8Array; spillFds: Int32Array } | undefined;

/** Buffers every connection shares: each is used only within one call. */
function spillBuffers(): { spillBytes: Uint8Array; spillFds: Int32Array } {
  spill ??= { spillBytes: new Uint8Array(SPILL_BYTES), spillFds: new Int32Array(SPILL_FDS) };
  return spill;
}
