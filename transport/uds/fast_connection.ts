/**
 * One connection of the Unix-socket fast path (see `fast_opens.ts`): its
 * receive, in which C answers the frames it can, and the READ leases C
 * granted on it, which the server's JS ends, checks or renews by id.
 *
 * @module
 */
import { InvalidArgumentError, LeaseExpiredError, UnknownLeaseError } from "../../core/errors.ts";
import { Access, type Lease } from "../../core/lease.ts";
import { Errno } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import type { ReceiverGroup } from "./channel.ts";
import type { FastOpens } from "./fast_opens.ts";
import type { UdsMetrics } from "./metrics.ts";
import { Op } from "./protocol.ts";

/** The length of a lease id granted in C. */
const LEASE_LENGTH = 24;
/** Bytes and fds of replies C could not send (the socket was full), for the queue. */
const SPILL_BYTES = 64 * 1024;
const SPILL_FDS = 253;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Where a connection of the fast path queues replies that C could not send. */
export interface SpillTarget {
  /** Queues a message to send once the socket takes it; takes over `fds`. */
  enqueue(bytes: Uint8Array, fds: number[]): void;
}

/** One connection of the fast path: what C answers of its messages, and its leases there. */
export class FastConnection {
  /** Bytes of the frames left to JS, at the buffer's start, of the last message received. */
  kept = 0;
  /** The connection in C, as `pk_fp_recv_each` takes it. */
  readonly address: bigint;
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
    this.address = BigInt(Deno.UnsafePointer.value(handle));
  }

  /** The server's connections whose messages are received together with this one's. */
  get group(): ReceiverGroup {
    return this.#fast.receives;
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
    this.answeredInC(out);
    return result;
  }

  /**
   * Takes in what C answered, from the figures of `pk_fp_recv` (or their
   * sums from `pk_fp_recv_each`, whose last receive was this connection's):
   * the puts and deletes first, then the server's counts, the replies C
   * could not send (this connection's), and the peer's counts of readers.
   *
   * @param out The figures.
   * @param bytes Bytes of the messages answered whole, when `pk_fp_recv_each` received them.
   */
  answeredInC(out: Float64Array, bytes = 0): void {
    const opens = out[1]!;
    const releases = out[3]!;
    const puts = out[9]!;
    const deletes = out[12]!;
    // Before anything else: no JS may see a put or delete answered and not the peer's.
    this.#fast.received(puts, deletes);
    const metrics = this.#metrics;
    metrics.received += bytes;
    if (opens === 0 && releases === 0 && puts === 0 && deletes === 0) return;
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
      const { spillBytes, spillFds } = spillBuffers();
      const held: number[] = [];
      for (let i = 0; i < out[8]!; i++) held.push(spillFds[i]!);
      this.#spill.enqueue(spillBytes.slice(0, out[7]!), held);
    }
    // Only leases change the counts C keeps: puts and deletes leave none to drain.
    if (opens > 0 || releases > 0) this.#fast.drain();
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
export function spillBuffers(): { spillBytes: Uint8Array; spillFds: Int32Array } {
  spill ??= { spillBytes: new Uint8Array(SPILL_BYTES), spillFds: new Int32Array(SPILL_FDS) };
  return spill;
}
