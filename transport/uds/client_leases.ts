/**
 * The client side's lease table: the leases held on one connection, each
 * with this process's hold on its blobs (mappings, memfds), and how the
 * memfds of a reply become those blobs.
 *
 * @module
 */
import { ProtocolError } from "../../core/errors.ts";
import { Access, type Lease } from "../../core/lease.ts";
import type { ObjectInfo } from "../../core/object.ts";
import type { Native } from "../../native/load.ts";
import type { MappingCache } from "./mapping_cache.ts";
import { type AcquireReply, encodeRead, encodeWrite, Op } from "./protocol.ts";
import { type Call, none, type Requests } from "./requests.ts";
import { type BlobOwner, type BlobSource, type OwnMemfd, UdsBlob } from "./uds_blob.ts";

/** A lease held on this connection, with this process's hold on its blobs. */
export class HeldLease implements BlobOwner {
  lease: Lease;
  object: ObjectInfo;
  blobs: UdsBlob[];
  ended = false;
  /** Why the lease ended, when its connection was lost under it: uses then fail with `LEASE_EXPIRED`. */
  lostWith: string | undefined;
  /** Sealed, as far as this side knows. */
  done: boolean;
  /** A seal through this lease is under way. */
  sealing = false;
  /**
   * For a lease held only by the handle it was made for (see
   * {@link ClientLeases.addHeld}): its neighbours in the list of those
   * leases, and whether it is in it.
   */
  previous: HeldLease | undefined;
  next: HeldLease | undefined;
  /** The leases whose list it is in, if any. */
  listedIn: ClientLeases | undefined;
  readonly #call: Call;

  /** @param blobs Its blobs, or an array to put them in. */
  constructor(call: Call, lease: Lease, object: ObjectInfo, blobs: UdsBlob[]) {
    this.#call = call;
    this.lease = lease;
    this.object = object;
    this.blobs = blobs;
    this.done = object.state === "SEALED";
  }

  get leaseId(): string {
    return this.lease.id;
  }

  get objectId(): string {
    return this.lease.objectId;
  }

  get access(): Access {
    return this.lease.access;
  }

  get sealed(): boolean {
    return this.done || this.sealing;
  }

  readRemote(index: number, offset: number, length: number): Promise<Uint8Array> {
    return this.#call(
      Op.READ,
      encodeRead({ lease: this.lease.id, blob: index, offset, length }),
      (body) => body.slice(),
    );
  }

  writeRemote(index: number, offset: number, bytes: Uint8Array): Promise<void> {
    return this.#call(
      Op.WRITE,
      encodeWrite({ lease: this.lease.id, blob: index, offset, bytes }),
      none,
    );
  }

  /**
   * Ends the lease on this side: views detach, mappings and memfds go.
   *
   * @param lost Why, when the connection was lost under the lease.
   */
  end(lost?: string): void {
    this.ended = true;
    this.lostWith = lost;
    const blobs = this.blobs;
    for (let i = 0; i < blobs.length; i++) blobs[i]!.end();
  }
}

/** The leases of one connection, by id. */
export class ClientLeases {
  readonly #native: Native;
  readonly #requests: Requests;
  readonly #mappings: MappingCache;
  readonly #leases = new Map<string, HeldLease>();
  /** The first of the leases held by their handles only; see {@link ClientLeases.addHeld}. */
  #held: HeldLease | undefined;
  /** How a lease's blobs make their remote calls. */
  readonly call: Call;

  constructor(native: Native, requests: Requests, mappings: MappingCache) {
    this.#native = native;
    this.#requests = requests;
    this.#mappings = mappings;
    this.call = (op, body, decode) => requests.call(op, body, decode);
  }

  /** The lease held under `leaseId`, if any. */
  get(leaseId: string): HeldLease | undefined {
    return this.#leases.get(leaseId);
  }

  /** Records a lease whose blobs are in place. */
  add(held: HeldLease): void {
    this.#leases.set(held.lease.id, held);
  }

  /**
   * Records a lease whose blobs are in place and that is ended only through
   * its object (see {@link ClientLeases.endHeld}), never by its id: a get's,
   * whose handle ends it. It goes in a list, not the map by id, so that
   * holding it costs no hashing of a new id and no allocation.
   */
  addHeld(held: HeldLease): void {
    const first = this.#held;
    held.next = first;
    if (first !== undefined) first.previous = held;
    this.#held = held;
    held.listedIn = this;
  }

  /** Whether `held` is a lease of this connection's that has not ended. */
  holds(held: HeldLease): boolean {
    return held.listedIn === this || this.#leases.get(held.lease.id) === held;
  }

  /** Ends a lease on this side, by its object; `lost` as {@link HeldLease.end} takes it. */
  endHeld(held: HeldLease, lost?: string): void {
    if (held.listedIn !== this) {
      this.end(held.lease.id);
      return;
    }
    this.#unlist(held);
    held.end(lost);
  }

  #unlist(held: HeldLease): void {
    const { previous, next } = held;
    if (previous === undefined) this.#held = next;
    else previous.next = next;
    if (next !== undefined) next.previous = previous;
    held.previous = held.next = undefined;
    held.listedIn = undefined;
  }

  /** Every lease held, for a seal that must unmap the other writers of its object. */
  values(): IterableIterator<HeldLease> {
    return this.#leases.values();
  }

  /** Ends a lease on this side, if it is held. */
  end(leaseId: string): void {
    const held = this.#leases.get(leaseId);
    if (held === undefined) return;
    this.#leases.delete(leaseId);
    held.end();
  }

  /**
   * Ends every lease on this side.
   *
   * @param lost Why, when the connection was lost under them.
   */
  endAll(lost?: string): void {
    for (const held of this.#leases.values()) held.end(lost);
    this.#leases.clear();
    while (this.#held !== undefined) this.endHeld(this.#held, lost);
  }

  /**
   * Takes over the memfds of an acquired object and records the lease: a
   * READ lease maps each one read-only and closes it, a CREATE or WRITE
   * lease keeps it until the lease ends. `own` is the memfd of this
   * process's that a CREATE handed over, which becomes the blob.
   */
  hold(reply: AcquireReply, fds: number[], own?: OwnMemfd): HeldLease {
    const { symbols } = this.#native;
    const held = new HeldLease(this.call, reply.lease, reply.object, []);
    const sizes = reply.object.blobSizes;
    let taken = 0;
    try {
      // The blob takes the memfd over first, so that it goes with the lease whatever happens.
      if (own !== undefined) held.blobs.push(new UdsBlob(this.#native, held, 0, own.size, own));
      if (own !== undefined && (sizes.length !== 1 || sizes[0] !== own.size)) {
        throw new ProtocolError(`Reply describes blobs of ${sizes} bytes for one of ${own.size}`);
      }
      if (fds.length !== 0 && fds.length !== sizes.length) {
        throw new ProtocolError(`Reply carries ${fds.length} fds for ${sizes.length} blobs`);
      }
      for (let i = held.blobs.length; i < sizes.length; i++) {
        const fd = fds[i];
        let source: BlobSource = {};
        if (fd !== undefined && held.access === Access.READ) {
          try {
            source = this.#mappings.map(fd, sizes[i]!);
          } finally {
            symbols.pk_close(fd);
            taken++;
          }
        } else if (fd !== undefined) {
          source = { fd };
          taken++;
        }
        held.blobs.push(new UdsBlob(this.#native, held, i, sizes[i]!, source));
      }
    } catch (error) {
      for (const fd of fds.slice(taken)) symbols.pk_close(fd);
      held.end();
      this.#requests.release(reply.lease.id);
      throw error;
    }
    this.#leases.set(reply.lease.id, held);
    return held;
  }
}
