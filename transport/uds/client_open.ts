/**
 * The client side of OPEN, the compact READ lease of `get`, and its cache:
 * by object id, what the latest OPEN reply said of each object, under the
 * serial the daemon gave it, with the mappings of its blobs. When this side
 * still maps an object as the daemon last described it, the reply says so
 * in a few bytes, with no info to parse and no fds to receive.
 *
 * @module
 */
import { ErrorCode, ProtocolError } from "../../core/errors.ts";
import { Access, type Lease } from "../../core/lease.ts";
import type { ObjectInfo } from "../../core/object.ts";
import type { Acquired, AcquireOptions, Peer } from "../../core/peer.ts";
import type { Native } from "../../native/load.ts";
import { type ClientLeases, HeldLease } from "./client_leases.ts";
import type { MappingCache, SharedMapping } from "./mapping_cache.ts";
import { setNewest } from "./newest.ts";
import {
  openFrameRoom,
  type OpenReplyFields,
  type OpenRequest,
  readOpenReply,
  writeOpenFrame,
} from "./open_frame.ts";
import { Op } from "./protocol.ts";
import { type Built, isFromDaemon, type Pending, type Requests } from "./requests.ts";
import { type BlobSource, UdsBlob } from "./uds_blob.ts";

/** An object as an OPEN reply described it, under the serial the daemon gave it. */
interface Known {
  readonly serial: number;
  readonly info: ObjectInfo;
  /** The mapping of each blob, by its key in the cache; none when the blobs have no memfds. */
  readonly keys: readonly string[];
}

/** The source of a blob without a memfd: shared, as a blob only reads it. */
const NO_SOURCE: BlobSource = Object.freeze({});
/** No mappings: the blobs have taken them, or none were made. */
const NO_MAPPINGS: readonly SharedMapping[] = Object.freeze([]);

/** How many objects a connection remembers from OPEN replies. */
const MAX_KNOWN = 1024;

/** READ leases taken with OPEN on one connection, and what its replies said. */
export class ClientOpens {
  readonly #native: Native;
  readonly #requests: Requests;
  readonly #leases: ClientLeases;
  readonly #mappings: MappingCache;
  /** By object id, what the latest OPEN reply said of it, oldest first. */
  readonly #known = new Map<string, Known>();
  /** Takes a READ lease with ACQUIRE, for a daemon that does not know OPEN. */
  readonly #acquire: (objectId: string, options: AcquireOptions) => Promise<Acquired>;
  /** The connection's peer, which a retry is told the read failed on. */
  readonly #self: Peer;
  /** Whether the daemon knows OPEN: older ones answer READ leases only to ACQUIRE. */
  #opens = true;
  /** The fields of the reply being handled: one record, filled anew for each. */
  readonly #reply: OpenReplyFields = {
    serial: 0,
    leaseId: "",
    expiresAt: undefined,
    info: undefined,
  };

  constructor(
    native: Native,
    requests: Requests,
    leases: ClientLeases,
    mappings: MappingCache,
    acquire: (objectId: string, options: AcquireOptions) => Promise<Acquired>,
    self: Peer,
  ) {
    this.#self = self;
    this.#native = native;
    this.#requests = requests;
    this.#leases = leases;
    this.#mappings = mappings;
    this.#acquire = acquire;
  }

  /** Whether the daemon may know OPEN: none has answered that it does not. */
  get available(): boolean {
    return this.#opens;
  }

  /**
   * Takes a READ lease with OPEN and resolves with `make` of it, called as
   * the reply is handled. Against a daemon that does not know OPEN, which
   * answers it with a `PROTOCOL` error, it takes the lease with ACQUIRE and
   * does so from then on.
   *
   * @param make Makes what the promise resolves with of the lease granted;
   *   when it throws, the lease is released.
   */
  open<T>(
    objectId: string,
    options: AcquireOptions,
    make: (acquired: Acquired) => T | Promise<T>,
    byHandle: boolean,
    retry?: ReadRetry,
  ): Promise<T> {
    const known = this.#known.get(objectId);
    const pinned = known === undefined ? undefined : this.#pin(known);
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const call = new OpenCall<T>(
      this,
      objectId,
      options,
      pinned === undefined ? undefined : known,
      pinned,
      make,
      byHandle,
      retry,
      resolve,
      reject,
    );
    try {
      this.#requests.send(call, call);
    } catch (error) {
      call.fail(error as Error);
    }
    return promise;
  }

  /** Ends a lease granted by OPEN that nobody will hold. */
  abandon(held: HeldLease): void {
    this.#leases.endHeld(held);
    this.#requests.release(held.leaseId);
  }

  /** An OPEN the daemon refused: falls back to ACQUIRE when it does not know OPEN. */
  refused<T>(call: OpenCall<T>, error: Error): void {
    if (
      error instanceof ProtocolError && error.code === ErrorCode.PROTOCOL && isFromDaemon(error)
    ) {
      this.#opens = false;
      call.resolve(this.#acquire(call.objectId, call.options).then(call.make));
      return;
    }
    const again = call.retry?.(error, call.objectId, call.options, call.make, this.#self);
    if (again === undefined) call.reject(error);
    else call.resolve(again);
  }

  /** Another use of each mapping of a known object; undefined when one is gone. */
  #pin(known: Known): SharedMapping[] | undefined {
    const keys = known.keys;
    // Sized up front: an array grown from empty reserves room for 16.
    const pinned = new Array<SharedMapping>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const shared = this.#mappings.share(keys[i]!);
      if (shared === undefined) {
        for (let used = 0; used < i; used++) pinned[used]!.release();
        this.#known.delete(known.info.id);
        return undefined;
      }
      pinned[i] = shared;
    }
    return pinned;
  }

  /**
   * Records the lease an OPEN reply grants, whose body is the bytes of
   * `message` from `from` to `to`; owns the pinned mappings of `call` and
   * `fds` from here on.
   */
  opened(
    call: OpenedCall,
    message: Uint8Array,
    from: number,
    to: number,
    fds: number[],
  ): HeldLease {
    const { symbols } = this.#native;
    const { objectId, ttl, knownAs: known } = call;
    let pinned = call.takePinned();
    let shared: readonly SharedMapping[] = NO_MAPPINGS;
    let leaseId: string | undefined;
    const reply = this.#reply;
    try {
      if (!readOpenReply(message, from, to, reply)) throw new ProtocolError("Malformed OPEN reply");
      leaseId = reply.leaseId;
      const lease: { -readonly [K in keyof Lease]: Lease[K] } = {
        id: leaseId,
        objectId,
        access: Access.READ,
      };
      if (ttl !== undefined) lease.ttl = ttl;
      if (reply.expiresAt !== undefined) lease.expiresAt = reply.expiresAt;
      let object: ObjectInfo;
      if (reply.info === undefined) {
        if (known === undefined || pinned === undefined || reply.serial !== known.serial) {
          throw new ProtocolError(`OPEN reply names serial ${reply.serial}, not a known one`);
        }
        object = known.info;
        // The pinned mappings become the blobs' (and are no longer released below).
        shared = pinned;
        pinned = undefined;
      } else {
        object = JSON.parse(reply.info) as ObjectInfo;
        const sizes = object.blobSizes;
        if (fds.length !== 0 && fds.length !== sizes.length) {
          throw new ProtocolError(`Reply carries ${fds.length} fds for ${sizes.length} blobs`);
        }
        const mapped: SharedMapping[] = [];
        shared = mapped;
        for (let i = 0; i < fds.length; i++) mapped.push(this.#mappings.map(fds[i]!, sizes[i]!));
        const keys = mapped.map((used) => used.key);
        const serial = reply.serial;
        setNewest(this.#known, objectId, { serial, info: object, keys }, MAX_KNOWN);
      }
      const blobSizes = object.blobSizes;
      const blobs = new Array<UdsBlob>(blobSizes.length);
      const held = new HeldLease(this.#leases.call, lease, object, blobs);
      for (let index = 0; index < blobSizes.length; index++) {
        const source = shared.length === 0 ? NO_SOURCE : shared[index]!;
        blobs[index] = new UdsBlob(this.#native, held, index, blobSizes[index]!, source);
      }
      shared = NO_MAPPINGS;
      if (call.byHandle) this.#leases.addHeld(held);
      else this.#leases.add(held);
      return held;
    } catch (error) {
      for (let i = 0; i < shared.length; i++) shared[i]!.release();
      if (leaseId !== undefined) this.#requests.release(leaseId);
      throw error instanceof SyntaxError ? new ProtocolError("Malformed OPEN reply") : error;
    } finally {
      if (pinned !== undefined) { for (let i = 0; i < pinned.length; i++) pinned[i]!.release(); }
      for (let i = 0; i < fds.length; i++) symbols.pk_close(fds[i]!);
    }
  }
}

/**
 * Tries a read that failed on `from` with `error` again elsewhere (a
 * connection that reconnects), or returns undefined to fail with the error.
 * One function serves every read: it is told what the read was.
 */
export type ReadRetry = <T>(
  error: Error,
  objectId: string,
  options: AcquireOptions,
  make: (acquired: Acquired) => T | Promise<T>,
  from: Peer,
) => Promise<T> | undefined;

/** What {@link ClientOpens.opened} reads of an OPEN under way. */
interface OpenedCall {
  readonly objectId: string;
  /** Whether the lease is ended through its object only, never by its id (`DirectRead`). */
  readonly byHandle: boolean;
  readonly ttl: number | undefined;
  readonly knownAs: Known | undefined;
  takePinned(): SharedMapping[] | undefined;
}

/**
 * One OPEN under way: its request (the frame it writes), its pending reply
 * and what settles its promise, in one object, with a field for each thing
 * it must carry and none for what it can work out: one is made per get.
 */
class OpenCall<T> implements Pending, Built, OpenRequest, OpenedCall {
  sentInSweep = 0;
  /** Set only for a reply split with `MORE`, which an OPEN reply never is. */
  declare parts?: Uint8Array[];
  readonly objectId: string;
  readonly options: AcquireOptions;
  /** What the object was known as, when `known` names it. */
  readonly knownAs: Known | undefined;
  readonly make: (acquired: Acquired) => T | Promise<T>;
  readonly byHandle: boolean;
  /** Tries the read again elsewhere after it failed; see {@link ReadRetry}. */
  readonly retry: ReadRetry | undefined;
  readonly resolve: (value: T | Promise<T>) => void;
  readonly reject: (error: Error) => void;
  readonly #opens: ClientOpens;
  #pinned: SharedMapping[] | undefined;

  constructor(
    opens: ClientOpens,
    objectId: string,
    options: AcquireOptions,
    knownAs: Known | undefined,
    pinned: SharedMapping[] | undefined,
    make: (acquired: Acquired) => T | Promise<T>,
    byHandle: boolean,
    retry: ReadRetry | undefined,
    resolve: (value: T | Promise<T>) => void,
    reject: (error: Error) => void,
  ) {
    this.#opens = opens;
    this.objectId = objectId;
    this.options = options;
    this.knownAs = knownAs;
    this.#pinned = pinned;
    this.make = make;
    this.byHandle = byHandle;
    this.retry = retry;
    this.resolve = resolve;
    this.reject = reject;
  }

  get op(): number {
    return Op.OPEN;
  }

  get takesFds(): boolean {
    return true;
  }

  get room(): number {
    return openFrameRoom(this.objectId);
  }

  get known(): number {
    return this.knownAs === undefined ? 0 : this.knownAs.serial;
  }

  get ttl(): number | undefined {
    return this.options.ttl;
  }

  get local(): boolean {
    return this.options.local === true;
  }

  write(into: Uint8Array, id: number, at: number): number {
    return writeOpenFrame(into, id, this, at);
  }

  /** The mappings pinned for the reply; the caller owns them from here on. */
  takePinned(): SharedMapping[] | undefined {
    const pinned = this.#pinned;
    this.#pinned = undefined;
    return pinned;
  }

  settle(body: Uint8Array, fds: number[]): void {
    this.settleIn(body, 0, body.length, fds);
  }

  settleIn(message: Uint8Array, from: number, to: number, fds: number[]): void {
    let held: HeldLease;
    try {
      held = this.#opens.opened(this, message, from, to, fds);
    } catch (error) {
      this.reject(error as Error);
      return;
    }
    let made: T | Promise<T>;
    try {
      made = this.make(held);
    } catch (error) {
      this.#opens.abandon(held);
      this.reject(error as Error);
      return;
    }
    this.resolve(made);
  }

  fail(error: Error): void {
    const pinned = this.takePinned();
    if (pinned !== undefined) { for (let i = 0; i < pinned.length; i++) pinned[i]!.release(); }
    this.#opens.refused(this, error);
  }
}
