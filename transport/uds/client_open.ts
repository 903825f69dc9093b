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
import type { Acquired, AcquireOptions } from "../../core/peer.ts";
import type { Native } from "../../native/load.ts";
import { type ClientLeases, HeldLease } from "./client_leases.ts";
import type { MappingCache, SharedMapping } from "./mapping_cache.ts";
import { setNewest } from "./newest.ts";
import { decodeOpenReply, openFrameRoom, type OpenRequest, writeOpenFrame } from "./open_frame.ts";
import { Op } from "./protocol.ts";
import { isFromDaemon, type Requests } from "./requests.ts";
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
  /** Whether the daemon knows OPEN: older ones answer READ leases only to ACQUIRE. */
  #opens = true;

  constructor(
    native: Native,
    requests: Requests,
    leases: ClientLeases,
    mappings: MappingCache,
    acquire: (objectId: string, options: AcquireOptions) => Promise<Acquired>,
  ) {
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
   * Takes a READ lease with OPEN. Against a daemon that does not know OPEN,
   * which answers it with a `PROTOCOL` error, it takes the lease with
   * ACQUIRE and does so from then on.
   */
  open(objectId: string, options: AcquireOptions): Promise<Acquired> {
    const ttl = options.ttl;
    const known = this.#known.get(objectId);
    const pinned = known === undefined ? undefined : this.#pin(known);
    const request: { -readonly [K in keyof OpenRequest]: OpenRequest[K] } = {
      objectId,
      known: pinned === undefined ? 0 : known!.serial,
    };
    if (ttl !== undefined) request.ttl = ttl;
    if (options.local === true) request.local = true;
    let taken = false;
    // A promise chain, not an async function: its frame would be most of what a get allocates.
    let replied: Promise<Acquired>;
    try {
      replied = this.#requests.call(
        Op.OPEN,
        { room: openFrameRoom(objectId), write: (into, id) => writeOpenFrame(into, id, request) },
        (body, fds): Acquired => {
          taken = true;
          return this.#opened(objectId, ttl, known, pinned, body, fds);
        },
      );
    } catch (error) {
      replied = Promise.reject(error);
    }
    return replied.then(undefined, (error) => {
      if (taken) throw error;
      for (const shared of pinned ?? []) shared.release();
      if (
        error instanceof ProtocolError && error.code === ErrorCode.PROTOCOL && isFromDaemon(error)
      ) {
        this.#opens = false;
        return this.#acquire(objectId, options);
      }
      throw error;
    });
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

  /** Records the lease an OPEN reply grants; owns `pinned` and `fds` from here on. */
  #opened(
    objectId: string,
    ttl: number | undefined,
    known: Known | undefined,
    pinned: SharedMapping[] | undefined,
    body: Uint8Array,
    fds: number[],
  ): HeldLease {
    const { symbols } = this.#native;
    let shared: readonly SharedMapping[] = NO_MAPPINGS;
    let leaseId: string | undefined;
    try {
      const reply = decodeOpenReply(body);
      if (reply === undefined) throw new ProtocolError("Malformed OPEN reply");
      leaseId = reply.leaseId;
      const lease: { -readonly [K in keyof Lease]: Lease[K] } = {
        id: reply.leaseId,
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
        setNewest(this.#known, objectId, { serial: reply.serial, info: object, keys }, MAX_KNOWN);
      }
      const held = new HeldLease(this.#leases.call, { lease, object });
      const blobSizes = object.blobSizes;
      const blobs = held.blobs = new Array(blobSizes.length);
      for (let index = 0; index < blobSizes.length; index++) {
        const source = shared.length === 0 ? NO_SOURCE : { shared: shared[index]! };
        blobs[index] = new UdsBlob(this.#native, held, index, blobSizes[index]!, source);
      }
      shared = NO_MAPPINGS;
      this.#leases.add(held);
      return held;
    } catch (error) {
      for (const used of shared) used.release();
      if (leaseId !== undefined) this.#requests.release(leaseId);
      throw error instanceof SyntaxError ? new ProtocolError("Malformed OPEN reply") : error;
    } finally {
      for (const used of pinned ?? []) used.release();
      for (const fd of fds) symbols.pk_close(fd);
    }
  }
}
