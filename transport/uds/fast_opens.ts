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
 * object made for it (`stored_in_c.ts` is what the peer holds of one once
 * taken in). The peer answers from the records what they answer (stats,
 * stat, list, delete, eviction: `PutsBeside.deferAdoption`) and takes in one
 * only when something of its own needs it as an object (a lease on it, a
 * put of its id); a drain takes in one read in C (its reads count on the
 * peer's object). So no JS ever sees a put answered and not held. The
 * records outlive the server: its closing hands them on to the peer as
 * they are, and the peer's closing lets go of them, taking none in. DELETEs
 * of those objects are answered in C too: out of C's lookups at once, and
 * right after that receive (`#takeDeletes`) out of the peer's, or, for one
 * never taken in, its record dropped, its room given back and the peer's
 * removal listeners told.
 *
 * @module
 */
import type { ObjectInfo } from "../../core/object.ts";
import {
  type Acquired,
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
import { check } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import type { PutMemory, UdsMetrics } from "./metrics.ts";
import { FastConnection, type SpillTarget } from "./fast_connection.ts";
import { FastReceives } from "./fast_receives.ts";
import { PendingPuts } from "./pending_puts.ts";
import { putInfo, StoredInC } from "./stored_in_c.ts";

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
/** The event flag of a drain (native/packice.c): the slot is free again. */
const FREED = 1;
/** Room lent to C for small puts at a time; lent again once half of it is used. */
const LEND_BYTES = 4 * 1024 * 1024;
/** Objects stored in C let go of between two turns of the event loop, as the peer closes. */
const LET_GO = 16_384;
/** Records (or slots) one call of `pk_fp_take_puts` (or `pk_fp_take_deletes`) takes. */
const PUTS = 256;

const encoder = new TextEncoder();

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

/** The table of objects a server's C answers gets of, and its counts in the peer. */
export class FastOpens {
  readonly #native: Native;
  readonly #peer: Peer & ReadsBeside & RemovalEvents;
  /** The peer, when C answers small puts for it. */
  readonly #puts: (Peer & PutsBeside) | undefined;
  readonly #maxObjects: number;
  #handle: Deno.PointerValue;
  /**
   * The same table, for the objects stored in C: C keeps it, after it is
   * closed, until the peer lets go of the last of them.
   */
  readonly #table: NonNullable<Deno.PointerValue>;
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
  /** Stops the peer asking about them; undefined once it has. */
  #stopDeferring: (() => void) | undefined;
  /** The peer closed and let go of them: any stored later goes at once. */
  #peerGone = false;
  /** An id being looked up in C, as bytes. */
  readonly #idBytes = new Uint8Array(UUID_LENGTH);
  readonly #reclaim = (bytes: number) => this.#takeBackRoom(bytes);
  readonly #deleted = new Uint32Array(PUTS);
  readonly #memory = new Float64Array(5);
  readonly #events = new Uint32Array(EVENTS * 4);
  /** The same events, for the change in readers, which may be negative. */
  readonly #changes = new Int32Array(this.#events.buffer);
  readonly #stopRemovals: () => void;
  readonly #sweeper: ReturnType<typeof setInterval>;
  #connections = 0;
  /** The receives of this table's connections found readable together, in one call. */
  readonly receives: FastReceives;
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
    this.receives = new FastReceives(native, () => this.now());
    const out = new BigUint64Array(1);
    check(native.symbols.pk_fp_create(out), "create the Unix-socket fast path");
    this.#table = Deno.UnsafePointer.create(out[0]!)!;
    this.#handle = this.#table;
    this.#stopRemovals = peer.onRemove((id) => this.#removed(id));
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
    Deno.unrefTimer(this.#sweeper);
    this.#stopDeferring = this.#puts?.deferAdoption(this.#waiting());
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

  /** The memory C holds for the objects of small puts; none once the server has closed. */
  putMemory(): PutMemory {
    const memory = this.#memory;
    memory.fill(0);
    if (this.#handle !== null) this.#native.symbols.pk_fp_put_memory(this.#handle, memory);
    return {
      regionBytes: memory[0]!,
      spareBytes: memory[1]!,
      chunkBytes: memory[2]!,
      regionsAhead: memory[3]!,
      regionsInline: memory[4]!,
    };
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
        // Counts of an object not taken in yet go to its own: the peer takes it in.
        const at = pending.indexOf(slot);
        if (at >= 0) this.#adoptAt(at);
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
    // Objects stored in C outlive the server: their records stay the peer's, as they are.
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
    this.#recordsDropped();
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
    const peer = this.#puts;
    for (;;) {
      const count = take(handle, pending.room(PUTS), PUTS);
      if (count > 0) this.#lent -= pending.appended(count, peer.orderPuts(count));
      if (count < PUTS) break;
    }
    // Stored as the peer closed: they go too.
    if (this.#peerGone) void this.#letGoOfAll();
  }

  /**
   * The record of the waiting object stored in C with id `objectId`: its
   * index in {@link FastOpens.#pending}, or -1 when none waits.
   */
  #recordOf(objectId: string): number {
    const pending = this.#pending;
    // None waiting: the table may be gone.
    if (pending.count === 0 || objectId.length !== UUID_LENGTH) return -1;
    const idBytes = this.#idBytes;
    if (encoder.encodeInto(objectId, idBytes).written !== UUID_LENGTH) return -1;
    const slot = this.#native.symbols.pk_fp_slot_of(this.#table, idBytes, UUID_LENGTH);
    return slot < 0 ? -1 : pending.indexOf(slot);
  }

  /** Has the peer take in the waiting object stored in C of record `at`, whose id is `id`. */
  #adoptAt(at: number, id = this.#pending.id(at)): void {
    const pending = this.#pending;
    const peer = this.#puts;
    if (peer === undefined) return;
    const slot = pending.slot(at);
    const size = pending.size(at);
    const createdAt = pending.createdAt(at);
    const serial = pending.serial(at);
    const order = pending.order(at);
    pending.drop(at);
    this.#adopt(peer, slot, size, id, createdAt, serial, order);
    this.#recordsDropped();
  }

  /**
   * Drops record `at` of a waiting object stored in C, never taken in: its
   * room goes back to the peer, its bytes go, and, unless C took it out of
   * its lookups already (`inLookups` false), it leaves them now.
   */
  #dropRecord(at: number, inLookups: boolean): void {
    const pending = this.#pending;
    const slot = pending.slot(at);
    const size = pending.size(at);
    pending.drop(at);
    if (!this.#peerGone) this.#puts?.returnRoom(size);
    const symbols = this.#native.symbols;
    if (inLookups && this.#handle !== null) symbols.pk_fp_remove(this.#table, slot);
    // The last let-go of a closed table frees it: nothing here calls C after that.
    this.unheld(slot, symbols.pk_fp_unhold(this.#table, slot));
    this.#recordsDropped();
  }

  /**
   * The peer closes: lets go of every waiting object stored in C, taking
   * none in, a slice at a time. Their records go at once: what comes for
   * them meanwhile finds none.
   */
  async #letGoOfAll(): Promise<void> {
    this.#peerGone = true;
    this.#stopDeferring = undefined;
    // C stores no more for it.
    this.#takeBackRoom();
    const pending = this.#pending;
    const slots = new Uint32Array(pending.count);
    let count = 0;
    pending.take((at) => slots[count++] = pending.slot(at));
    const symbols = this.#native.symbols;
    const table = this.#table;
    for (let start = 0; start < count; start += LET_GO) {
      if (start > 0) await new Promise((resolve) => setTimeout(resolve, 0));
      for (let i = start; i < Math.min(count, start + LET_GO); i++) {
        const slot = slots[i]!;
        if (this.#handle !== null) symbols.pk_fp_remove(table, slot);
        // The last let-go of a closed table frees it.
        this.unheld(slot, symbols.pk_fp_unhold(table, slot));
      }
    }
  }

  /** Once the server has closed and no object waits, the peer has nothing to ask here. */
  #recordsDropped(): void {
    if (this.#handle !== null || this.#pending.count > 0) return;
    this.#stopDeferring?.();
    this.#stopDeferring = undefined;
  }

  /** What the peer sees of the waiting objects stored in C (`PutsBeside.deferAdoption`). */
  #waiting(): DeferredAdoption {
    const pending = this.#pending;
    const infoAt = (at: number) => putInfo(pending.id(at), pending.size(at), pending.createdAt(at));
    return {
      get objects(): number {
        return pending.count;
      },
      get bytes(): number {
        return pending.bytes;
      },
      adoptOne: (objectId) => {
        const at = this.#recordOf(objectId);
        if (at >= 0) this.#adoptAt(at, objectId);
      },
      info: (objectId) => {
        const at = this.#recordOf(objectId);
        return at < 0 ? undefined : infoAt(at);
      },
      next: (at) => pending.next(at),
      after: (order) => pending.after(order),
      order: (at) => pending.order(at),
      size: (at) => pending.size(at),
      infoAt,
      snapshot: () => pending.snapshot(),
      remove: (objectId) => {
        const at = this.#recordOf(objectId);
        if (at < 0) return false;
        this.#dropRecord(at, true);
        return true;
      },
      discard: () => this.#letGoOfAll(),
    };
  }

  /** Has the peer take in the object stored in C in `slot`, and answers for it here as the peer's. */
  #adopt(
    peer: Peer & PutsBeside,
    slot: number,
    size: number,
    id: string,
    createdAt: number,
    serial: number,
    order: number,
  ): void {
    const symbols = this.#native.symbols;
    const table = this.#table;
    const bytes = new StoredInC(this, symbols, table, slot);
    const object = putInfo(id, size, createdAt);
    const reads = peer.adoptBeside(object, bytes, order);
    if (reads === undefined) {
      // Closed meanwhile, or a UUID taken: the object goes, and its room back.
      peer.returnRoom(size);
      if (this.#handle !== null) symbols.pk_fp_remove(table, slot);
      bytes.release();
      return;
    }
    this.#slots[slot] = { id, reads, object, serial, put: true };
    // Answered for in C, unless the server has closed.
    if (this.#handle !== null) this.#byId.set(id, slot);
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
          const id = pending.id(at);
          this.#dropRecord(at, false);
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
    if (handle === null || peer === undefined || this.#closing || this.#peerGone) return;
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

function noop(): void {}
