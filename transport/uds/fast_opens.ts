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
 * @module
 */
import { InvalidArgumentError, LeaseExpiredError, UnknownLeaseError } from "../../core/errors.ts";
import { Access, type Lease } from "../../core/lease.ts";
import type { ObjectInfo } from "../../core/object.ts";
import {
  type Acquired,
  type BesideReads,
  offersReadsBeside,
  type Peer,
  type ReadsBeside,
  type RemovalEvents,
} from "../../core/peer.ts";
import { check, Errno } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import type { UdsMetrics } from "./metrics.ts";
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
/** The length of a lease id granted in C. */
const LEASE_LENGTH = 24;
/** The event flag of a drain (native/packice.c): the slot is free again. */
const FREED = 1;
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
  readonly #maxObjects: number;
  #handle: Deno.PointerValue;
  /** The object of each slot, until C has freed the slot. */
  readonly #slots: Array<Registered | undefined> = [];
  readonly #freeSlots: number[] = [];
  /** The slot of each object in lookups. */
  readonly #byId = new Map<string, number>();
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
    this.#maxObjects = maxObjects;
    const out = new BigUint64Array(1);
    check(native.symbols.pk_fp_create(out), "create the Unix-socket fast path");
    this.#handle = Deno.UnsafePointer.create(out[0]!);
    this.#stopRemovals = peer.onRemove((id) => this.#removed(id));
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
    Deno.unrefTimer(this.#sweeper);
  }

  /** The peer's clock, which decides deadlines in C too. */
  now(): number {
    return this.#peer.clock.now();
  }

  /** How many objects are answered for in C now. */
  get size(): number {
    return this.#byId.size;
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
    if (acquired.blobs.length !== 1 || this.#byId.size >= this.#maxObjects) return undefined;
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
    const slot = this.#freeSlots.pop() ?? this.#slots.length;
    const result = this.#native.symbols.pk_fp_put(
      handle,
      slot,
      id,
      id.length,
      fd,
      BigInt(object.size),
      text,
      text.length,
      object.expiresAt ?? 0,
    );
    if (result < 0) {
      // Too long an info, or out of fds or memory: the JS path keeps serving it.
      this.#freeSlots.push(slot);
      return undefined;
    }
    const serial = (0x8000_0000 | result) >>> 0;
    this.#slots[slot] = { id: object.id, reads, object, serial };
    this.#byId.set(object.id, slot);
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
    for (;;) {
      const count = this.#native.symbols.pk_fp_drain(handle, events, EVENTS);
      for (let i = 0; i < count; i++) {
        const slot = events[4 * i]!;
        const change = this.#changes[4 * i + 1]!;
        const reads = events[4 * i + 2]!;
        const registered = this.#slots[slot];
        if (registered === undefined) continue;
        if (change !== 0) registered.reads.hold(change);
        if (reads > 0) registered.reads.read(reads);
        if (events[4 * i + 3]! & FREED) {
          this.#slots[slot] = undefined;
          this.#freeSlots.push(slot);
        }
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
    for (const slot of this.#byId.values()) this.#native.symbols.pk_fp_remove(handle, slot);
    this.#byId.clear();
    this.drain();
    if (this.#connections > 0) return;
    clearInterval(this.#sweeper);
    this.#stopRemovals();
    this.#handle = null;
    check(this.#native.symbols.pk_fp_close(handle), "close the Unix-socket fast path");
  }

  #removed(id: string): void {
    const slot = this.#byId.get(id);
    if (slot === undefined || this.#handle === null) return;
    this.#byId.delete(id);
    if (this.#native.symbols.pk_fp_remove(this.#handle, slot) === 1) {
      this.#slots[slot] = undefined;
      this.#freeSlots.push(slot);
    }
    this.drain();
  }

  #sweep(): void {
    if (this.#handle === null) return;
    if (this.#native.symbols.pk_fp_expire(this.#handle, this.now()) > 0) this.drain();
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
  readonly #out = new Float64Array(9);
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
    if (opens === 0 && releases === 0) return result;
    const metrics = this.#metrics;
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
    this.#fast.drain();
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
