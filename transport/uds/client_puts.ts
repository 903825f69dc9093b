/**
 * The client side's ways to create an object, by size: inline in one PUT
 * request up to 64 KiB; from 1 MiB, through a memfd this process faulted in
 * ahead (the write-ahead pool) and hands over with the CREATE; otherwise,
 * and with memfds the caller filled, through the CREATE lease's memfd.
 *
 * @module
 */
import { UnsupportedError } from "../../core/errors.ts";
import { Access } from "../../core/lease.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { putInSteps } from "../../core/put_in_steps.ts";
import type { AcquireOptions, Peer, PutOptions } from "../../core/peer.ts";
import type { PreparedMemfd } from "../../native/memfd_pool.ts";
import type { Native } from "../../native/load.ts";
import type { ClientLeases, HeldLease } from "./client_leases.ts";
import {
  type AcquireReply,
  type AcquireRequest,
  decodeJson,
  decodePutReply,
  decodePutReplyId,
  Flag,
  Op,
  putFrameRoom,
  writePlainPutFrame,
  writePutFrame,
} from "./protocol.ts";
import type { Built, Decode, Pending, Requests } from "./requests.ts";
import type { OwnMemfd } from "./uds_blob.ts";
import { WriteAhead } from "./write_ahead.ts";

/** The largest object {@link ClientPuts.putObject} sends inline. */
const INLINE_PUT = 64 * 1024;
/** The smallest object {@link ClientPuts.putObject} writes into a memfd of its own. */
const WRITE_AHEAD_PUT = 1024 * 1024;

/** Decodes a reply whose body is an `ObjectInfo`. */
const decodeInfo: Decode<ObjectInfo> = (body) => decodeJson(body) as ObjectInfo;

/** Decodes the reply to a PUT, compact or JSON. */
const decodePut: Decode<ObjectInfo> = (body) => decodePutReply(body);

/** The frame of a PUT, written in place for its request id: one object per put. */
class PutFrame implements Built {
  readonly room: number;
  readonly #fields: string;
  readonly #chunks: readonly Uint8Array[];
  readonly #size: number;

  constructor(fields: string, chunks: readonly Uint8Array[], size: number) {
    this.room = putFrameRoom(fields, size);
    this.#fields = fields;
    this.#chunks = chunks;
    this.#size = size;
  }

  write(into: Uint8Array, id: number, at: number): number {
    // Compact: the reply's info needs no JSON parsed (a daemon from before replies JSON).
    return writePutFrame(into, id, this.#fields, this.#chunks, this.#size, at, Flag.COMPACT);
  }
}

/** Room of a plain PUT frame beyond its bytes: fields `{}`. */
const PLAIN_PUT_ROOM = putFrameRoom("{}", 0);

/**
 * A plain put whose caller wants only the id (`Client.put`): one object is
 * its pending request, its frame and its reply's handler, and the reply
 * settles the caller's promise with the id read straight from the message,
 * with no `ObjectInfo` made.
 */
class PlainPut implements Pending, Built {
  readonly op = Op.PUT;
  sentInSweep = 0;
  readonly takesFds = false;
  parts?: Uint8Array[];
  readonly room: number;
  readonly promise: Promise<string>;
  readonly #bytes: Uint8Array;
  readonly #resolve: (id: string) => void;
  readonly #reject: (error: Error) => void;

  constructor(bytes: Uint8Array) {
    const { promise, resolve, reject } = Promise.withResolvers<string>();
    this.promise = promise;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#bytes = bytes;
    this.room = PLAIN_PUT_ROOM + bytes.length;
  }

  write(into: Uint8Array, id: number, at: number): number {
    return writePlainPutFrame(into, id, this.#bytes, at, Flag.COMPACT);
  }

  settle(body: Uint8Array): void {
    this.settleIn(body, 0, body.length);
  }

  settleIn(message: Uint8Array, from: number, to: number): void {
    let id: string;
    try {
      id = decodePutReplyId(message, from, to);
    } catch (error) {
      this.#reject(error as Error);
      return;
    }
    this.#resolve(id);
  }

  fail(error: Error): void {
    this.#reject(error);
  }
}

/** How one connection creates objects. */
export class ClientPuts {
  readonly #native: Native;
  readonly #requests: Requests;
  readonly #leases: ClientLeases;
  /** Memfds this side fills for large puts; gone when the daemon cannot take them. */
  #writeAhead: WriteAhead | undefined;
  #retired: Promise<void> | undefined;

  /**
   * @param writeAheadBytes Bytes the write-ahead pool may keep ready; 0 for none.
   */
  constructor(
    native: Native,
    requests: Requests,
    leases: ClientLeases,
    writeAheadBytes: number,
  ) {
    this.#native = native;
    this.#requests = requests;
    this.#leases = leases;
    if (writeAheadBytes > 0) this.#writeAhead = new WriteAhead(native, writeAheadBytes);
  }

  /**
   * Takes a CREATE lease of `size` bytes in one blob on a memfd of the
   * write-ahead pool, when one is ready; undefined when none is or the
   * daemon cannot take memfds (a memfd is then prepared for the next
   * object of this size).
   */
  async createAhead(request: AcquireRequest, size: number): Promise<HeldLease | undefined> {
    const writeAhead = size >= WRITE_AHEAD_PUT ? this.#writeAhead : undefined;
    const memfd = this.#requests.closedReason === undefined ? writeAhead?.take(size) : undefined;
    // None ready: one is prepared for the next object of this size.
    if (memfd === undefined) {
      writeAhead?.done(size);
      return undefined;
    }
    return await this.#createOwn(request, { memfd, size, writeAhead: writeAhead! });
  }

  /**
   * Takes a CREATE lease on an object whose blobs are memfds the caller
   * filled (`AcquireOptions.memfds`), handed to the daemon with the request:
   * one, the most a request carries. This process's descriptor is closed
   * once the daemon has taken its own.
   */
  async createFrom(request: AcquireRequest, memfds: readonly number[]): Promise<HeldLease> {
    if (memfds.length !== 1) {
      throw new UnsupportedError(
        `Cannot hand over ${memfds.length} memfds: one per request over a Unix socket`,
      );
    }
    const held = await this.#requests.call(
      Op.ACQUIRE,
      JSON.stringify(request),
      (body, fds) => this.#leases.hold(decodeJson(body) as AcquireReply, fds),
      memfds[0],
    );
    this.#native.symbols.pk_close(memfds[0]!);
    return held;
  }

  /**
   * Takes a CREATE lease on an object whose blob is a memfd this process
   * faulted in ahead: writes into it cost no page faults. Undefined when
   * the daemon cannot take memfds.
   */
  async #createOwn(request: AcquireRequest, own: OwnMemfd): Promise<HeldLease | undefined> {
    const { memfd, size, writeAhead } = own;
    let taken = false;
    try {
      return await this.#requests.call(
        Op.ACQUIRE,
        JSON.stringify(request),
        (body, fds) => {
          // The daemon's copy of the memfd: this process has its own.
          for (const fd of fds) this.#native.symbols.pk_close(fd);
          taken = true;
          return this.#leases.hold(decodeJson(body) as AcquireReply, [], own);
        },
        memfd.fd,
      );
    } catch (error) {
      if (!(error instanceof UnsupportedError)) throw error;
      this.#retire(writeAhead);
      return undefined;
    } finally {
      if (!taken) writeAhead.done(size, memfd);
    }
  }

  /**
   * Creates, fills and seals an object through `peer`, the connection's:
   * see `UdsPeer.putObject`.
   */
  putObject(
    peer: Peer,
    chunks: readonly Uint8Array[],
    size: number,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    const plain = options.id === undefined && options.meta === undefined &&
      options.ttl === undefined;
    if (size <= INLINE_PUT) {
      // A promise chain, not an async function: the put of a small object is the common one.
      let fields: string;
      try {
        fields = plain ? "{}" : JSON.stringify(putFields(options));
      } catch (error) {
        return Promise.reject(error);
      }
      return this.#requests.call(Op.PUT, new PutFrame(fields, chunks, size), decodePut);
    }
    return this.#putLarge(peer, chunks, size, options, plain);
  }

  /**
   * As {@link ClientPuts.putObject}, of one array of bytes, resolving with
   * the object's id only: see `UdsPeer.putId`.
   */
  putId(peer: Peer, bytes: Uint8Array, options: PutOptions): Promise<string> {
    const plain = options.id === undefined && options.meta === undefined &&
      options.ttl === undefined;
    if (!plain || bytes.length > INLINE_PUT) {
      return this.putObject(peer, [bytes], bytes.length, options).then(idOf);
    }
    const put = new PlainPut(bytes);
    try {
      this.#requests.send(put, put);
    } catch (error) {
      return Promise.reject(error);
    }
    return put.promise;
  }

  /** {@link ClientPuts.putObject} of an object too large to go inline. */
  async #putLarge(
    peer: Peer,
    chunks: readonly Uint8Array[],
    size: number,
    options: PutOptions,
    plain: boolean,
  ): Promise<ObjectInfo> {
    const fields = plain ? {} : lifeFields(options);
    const request = putFields(options);
    const writeAhead = size >= WRITE_AHEAD_PUT ? this.#writeAhead : undefined;
    const memfd = this.#requests.closedReason === undefined ? writeAhead?.take(size) : undefined;
    try {
      if (memfd !== undefined) {
        const info = await this.#putOwn(writeAhead!, memfd, chunks, { ...request, size });
        if (info !== undefined) return info;
        // This daemon keeps no blobs in memfds: write into the ones it gives.
        this.#retire(writeAhead!);
      }
      return await putInSteps(peer, options.id, chunks, { ...fields, size });
    } finally {
      writeAhead?.done(size, memfd);
    }
  }

  /**
   * Puts an object through a memfd of this process's: the CREATE request
   * that hands it over leaves first, and the bytes are copied in while it
   * travels; then the seal. Undefined when the daemon cannot take memfds.
   */
  async #putOwn(
    writeAhead: WriteAhead,
    memfd: PreparedMemfd,
    chunks: readonly Uint8Array[],
    request: PutOptions & { size: number },
  ): Promise<ObjectInfo | undefined> {
    const acquiring = this.#requests.call(
      Op.ACQUIRE,
      JSON.stringify({ ...request, access: Access.CREATE }),
      (body, fds) => {
        for (const fd of fds) this.#native.symbols.pk_close(fd);
        return decodeJson(body) as AcquireReply;
      },
      memfd.fd,
    );
    try {
      writeAhead.copy(memfd, chunks);
    } catch (error) {
      const granted = await acquiring.catch(() => undefined);
      if (granted) this.#requests.release(granted.lease.id);
      throw error;
    }
    let lease: string;
    try {
      lease = (await acquiring).lease.id;
    } catch (error) {
      if (error instanceof UnsupportedError) return undefined;
      throw error;
    }
    try {
      return await this.#requests.call(Op.SEAL, lease, decodeInfo);
    } finally {
      this.#requests.release(lease);
    }
  }

  /** The daemon keeps no blobs in memfds: the write-ahead pool goes. */
  #retire(writeAhead: WriteAhead): void {
    this.#retired = writeAhead.close();
    this.#writeAhead = undefined;
  }

  /** Gives back the memory of the write-ahead pool. */
  close(): Promise<void> | undefined {
    return this.#writeAhead?.close();
  }
}

function idOf(info: ObjectInfo): string {
  return info.id;
}

type LifeFields = Pick<AcquireOptions, "meta" | "ttl" | "objectTtl">;

/** Metadata and TTL of a put, as its CREATE lease takes them: the TTL is the object's too. */
function lifeFields(options: PutOptions): LifeFields {
  return {
    ...(options.meta === undefined ? {} : { meta: options.meta }),
    ...(options.ttl === undefined ? {} : { ttl: options.ttl, objectTtl: options.ttl }),
  };
}

/** The fields of a put's request: its id, if given, and {@link lifeFields}. */
function putFields(options: PutOptions): LifeFields & { id?: string } {
  const fields = lifeFields(options);
  return options.id === undefined ? fields : { id: options.id, ...fields };
}
