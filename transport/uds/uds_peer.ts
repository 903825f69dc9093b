import { setImmediate } from "node:timers";
import type {
  Acquired,
  AcquireOptions,
  DirectPut,
  Peer,
  PeerStats,
  PutOptions,
} from "../../core/peer.ts";
import {
  ClosedError,
  errorFromCode,
  InvalidArgumentError,
  NativeUnavailableError,
  ProtocolError,
  StoreUnavailableError,
  UnauthorizedError,
  UnknownLeaseError,
  UnsupportedError,
} from "../../core/errors.ts";
import { Access, type Lease } from "../../core/lease.ts";
import type { ObjectInfo } from "../../core/object.ts";
import type { DaemonStatus, StatusSource } from "../../core/status.ts";
import type { OriginReply, OriginRequest, OriginSource } from "../origin_fetch.ts";
import { Errno, errnoError } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import { ensureNative, type Native } from "../../native/load.ts";
import { Channel, type ChannelHandler } from "./channel.ts";
import { MappingCache, type SharedMapping } from "./mapping_cache.ts";
import { setNewest } from "./newest.ts";
import { decodeOpenReply, openFrameRoom, type OpenRequest, writeOpenFrame } from "./open_frame.ts";
import {
  type AcquireReply,
  type AcquireRequest,
  decodeJson,
  encodeFrame,
  encodeRead,
  encodeWrite,
  Flag,
  type Header,
  HEADER_SIZE,
  MAX_FDS,
  Op,
  putFrameRoom,
  readHeader,
  textFrameRoom,
  writePutFrame,
  writeTextFrame,
} from "./protocol.ts";
import { Reactor } from "../../native/reactor.ts";
import { connectSocket } from "./socket.ts";
import { type BlobOwner, type BlobSource, type OwnMemfd, UdsBlob } from "./uds_blob.ts";
import { WriteAhead } from "./write_ahead.ts";
import type { PreparedMemfd } from "../../native/memfd_pool.ts";

/** Options of {@link UdsPeer.connect}. */
export interface UdsPeerOptions {
  /** How long to keep trying while the server's backlog is full, in milliseconds. Default 5000. */
  readonly connectTimeout?: number;
  /**
   * Bytes of memory this process may keep ready, faulted in, for puts of
   * 1 MiB or more (see {@link UdsPeer.putObject}); given back 2 s after the
   * last such put. Default 256 MiB; 0 turns it off.
   */
  readonly writeAheadBytes?: number;
  /**
   * How long a request waits for its reply, in milliseconds, before it fails
   * with `STORE_UNAVAILABLE`: a daemon that is stopped or hung does not hang
   * its clients. A lease granted by a reply that comes too late is released.
   * Default 60000; 0 waits for ever.
   */
  readonly requestTimeout?: number;
}

/** The largest object {@link UdsPeer.putObject} sends inline. */
const INLINE_PUT = 64 * 1024;
/** The smallest object {@link UdsPeer.putObject} writes into a memfd of its own. */
const WRITE_AHEAD_PUT = 1024 * 1024;
const DEFAULT_WRITE_AHEAD_BYTES = 256 * 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT = 60_000;
/** How often requests are checked for time-outs, in milliseconds. */
const SWEEP_MS = 100;

/** Decodes a reply body (valid only during the call) and the fds that came with it. */
type Decode<T> = (body: Uint8Array, fds: number[]) => T;

interface Pending {
  readonly op: number;
  /** The time-out sweep during which the request was sent: a clock without a call per request. */
  readonly sentInSweep: number;
  readonly decode: Decode<unknown>;
  /** Whether the decoder takes over the fds of the reply; otherwise they are closed. */
  readonly takesFds: boolean;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  /** Earlier parts of a reply split with {@link Flag.MORE}. */
  parts?: Uint8Array[];
}

/** An object as an OPEN reply described it, under the serial the daemon gave it. */
interface Known {
  readonly serial: number;
  readonly info: ObjectInfo;
  /** The mapping of each blob, by its key in the cache; none when the blobs have no memfds. */
  readonly keys: readonly string[];
}

/** How many objects a connection remembers from OPEN replies. */
const MAX_KNOWN = 1024;

/** A whole request frame, written in place for a request id. */
interface Built {
  /** The most bytes the frame takes. */
  readonly room: number;
  /** Writes the frame into `into`; returns its length. */
  write(into: Uint8Array, id: number): number;
}

/** A request body: bytes, a string (an id, or JSON) to encode straight into the frame, or a whole frame. */
type Body = Uint8Array | string | Built;

/** Sends a request and resolves with its decoded reply. */
type Call = <T>(op: number, body: Body, decode: Decode<T>) => Promise<T>;

/** What a 0-length reply decodes to. */
const none: Decode<void> = () => {};
/** Decodes a reply whose body is an `ObjectInfo`. */
const decodeInfo: Decode<ObjectInfo> = (body) => decodeJson(body) as ObjectInfo;
/** The fds of a frame that carries none; never changed. */
const NO_FDS: number[] = [];

/** A lease held on this connection, with this process's hold on its blobs. */
class HeldLease implements BlobOwner {
  lease: Lease;
  object: ObjectInfo;
  readonly blobs: UdsBlob[] = [];
  ended = false;
  /** Sealed, as far as this side knows. */
  done: boolean;
  /** A seal through this lease is under way. */
  sealing = false;
  readonly #call: Call;

  constructor(call: Call, reply: AcquireReply) {
    this.#call = call;
    this.lease = reply.lease;
    this.object = reply.object;
    this.done = reply.object.state === "SEALED";
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

  /** Ends the lease on this side: views detach, mappings and memfds go. */
  end(): void {
    this.ended = true;
    for (const blob of this.blobs) blob.end();
  }
}

/**
 * A {@link Peer} in another process, reached over a Unix socket: the
 * client side of the Packice daemon. Objects' bytes are not copied: each
 * blob's memfd arrives with its lease and is mapped here, read-only for
 * READ leases and read-write for CREATE leases, so `openView()` gives the
 * daemon's memory itself. Requests are pipelined on one connection; many
 * connections in one process share one native event-loop thread.
 *
 * Leases belong to the connection: closing it (or the process ending, even
 * by a crash) ends them all. An open connection keeps the process running,
 * so close it when done.
 *
 * @example Connect to a daemon
 * ```ts ignore
 * import { Client, UdsPeer } from "@packice/packice";
 * await using peer = await UdsPeer.connect("/run/user/1000/packice.sock");
 * await using client = new Client(peer);
 * const id = await client.put("shared");
 * using handle = await client.get(id);
 * console.log(handle.bytes.length); // 6, mapped from the daemon's memory
 * ```
 */
export class UdsPeer implements Peer, OriginSource, DirectPut, StatusSource {
  readonly #native: Native;
  readonly #path: string;
  readonly #reactor: Reactor;
  readonly #channel: Channel;
  readonly #pending = new Map<number, Pending>();
  readonly #leases = new Map<string, HeldLease>();
  readonly #mappings: MappingCache;
  /** Memfds this side fills for large puts; gone when the daemon cannot take them. */
  #writeAhead: WriteAhead | undefined;
  #retired: Promise<void> | undefined;
  readonly #requestTimeout: number;
  /** ACQUIRE requests given up on, whose late replies would grant leases to release. */
  readonly #abandoned = new Set<number>();
  /** By object id, what the latest OPEN reply said of it, oldest first. */
  readonly #known = new Map<string, Known>();
  /** Whether the daemon knows OPEN: older ones answer READ leases only to ACQUIRE. */
  #opens = true;
  #nextId = 1;
  #flushQueued = false;
  #lazyFlushQueued = false;
  #closedReason: string | undefined;
  #closing: Promise<void> | undefined;

  /**
   * Connects to a daemon's Unix socket.
   *
   * @param path The socket path.
   * @param options How long to wait for a busy server.
   * @returns The connected peer.
   * @throws {StoreUnavailableError} When nothing listens on `path`.
   * @throws {UnauthorizedError} When the socket's mode does not let this user connect.
   * @throws {NativeUnavailableError} When the native library cannot be loaded.
   *
   * @example Read an object another process wrote
   * ```ts ignore
   * import { UdsPeer } from "@packice/packice";
   * await using peer = await UdsPeer.connect("/tmp/packice-alice.sock");
   * const { lease, blobs } = await peer.acquire("model.bin", "READ");
   * console.log(blobs[0]!.openView()!.length); // the object's size, no copy made
   * await peer.release(lease.id);
   * ```
   */
  static async connect(path: string, options: UdsPeerOptions = {}): Promise<UdsPeer> {
    const native = await ensureNative();
    if (native === undefined) {
      throw new NativeUnavailableError(
        `Cannot connect to ${path}: native library unavailable, so Unix sockets are too`,
      );
    }
    const deadline = Date.now() + (options.connectTimeout ?? 5000);
    let delay = 1;
    const writeAhead = options.writeAheadBytes ?? DEFAULT_WRITE_AHEAD_BYTES;
    const timeout = options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT;
    for (;;) {
      const fd = connectSocket(native, path);
      if (fd >= 0) return new UdsPeer(native, path, fd, writeAhead, timeout);
      const errno = -fd;
      if (errno === Errno.ENOENT || errno === Errno.ECONNREFUSED) {
        throw new StoreUnavailableError(
          `Cannot connect to ${path}: no daemon listens there: start one with \`packice serve\``,
        );
      }
      if (errno === Errno.EACCES || errno === Errno.EPERM) {
        throw new UnauthorizedError(`Cannot connect to ${path}: permission denied`);
      }
      if (errno !== Errno.EAGAIN || Date.now() >= deadline) {
        throw errnoError(errno, `connect to ${path}`);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 50);
    }
  }

  private constructor(
    native: Native,
    path: string,
    fd: number,
    writeAheadBytes: number,
    requestTimeout: number,
  ) {
    this.#native = native;
    this.#path = path;
    this.#requestTimeout = requestTimeout;
    if (requestTimeout > 0) UdsPeer.#watch(this);
    if (writeAheadBytes > 0) this.#writeAhead = new WriteAhead(native, writeAheadBytes);
    this.#mappings = new MappingCache(native);
    const handler: ChannelHandler = {
      message: (bytes, fds, flags) => this.#message(bytes, fds, flags),
      closed: (reason) => this.#shutdown(`Connection to ${path} lost: ${reason}`),
    };
    this.#reactor = Reactor.of(native);
    this.#channel = new Channel(native, this.#reactor, fd, handler, {
      maxQueuedBytes: Number.MAX_SAFE_INTEGER,
    });
  }

  /** The socket path. */
  get path(): string {
    return this.#path;
  }

  /** Whether {@link UdsPeer.close} has run or the connection has ended. */
  get closed(): boolean {
    return this.#closedReason !== undefined;
  }

  acquire(
    objectId: string | undefined,
    access: Access,
    options: AcquireOptions = {},
  ): Promise<Acquired> {
    if (
      access === Access.READ && objectId !== undefined && options.memfds === undefined &&
      this.#opens
    ) {
      return this.#open(objectId, options);
    }
    return this.#acquire(objectId, access, options);
  }

  /** Takes a lease with ACQUIRE, whose request and reply are JSON. */
  async #acquire(
    objectId: string | undefined,
    access: Access,
    options: AcquireOptions,
  ): Promise<Acquired> {
    if (Array.isArray(options.size) && options.size.length > MAX_FDS) {
      throw new InvalidArgumentError(
        `Invalid size: ${options.size.length} blobs, at most ${MAX_FDS} over a Unix socket`,
      );
    }
    const request: AcquireRequest = {
      ...(objectId === undefined ? {} : { id: objectId }),
      access,
      ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
      ...(options.objectTtl === undefined ? {} : { objectTtl: options.objectTtl }),
      ...(options.size === undefined ? {} : { size: options.size }),
      ...(options.meta === undefined ? {} : { meta: options.meta }),
      ...(options.local === true ? { local: true } : {}),
    };
    if (options.memfds !== undefined) return await this.#createFrom(request, options.memfds);
    const size = options.size;
    const writeAhead = access === Access.CREATE && typeof size === "number" &&
        size >= WRITE_AHEAD_PUT && options.memfds === undefined
      ? this.#writeAhead
      : undefined;
    const memfd = this.#closedReason === undefined ? writeAhead?.take(size as number) : undefined;
    // None ready: one is prepared for the next object of this size.
    if (memfd === undefined) writeAhead?.done(size as number);
    if (memfd !== undefined) {
      const held = await this.#createOwn(request, {
        memfd,
        size: size as number,
        writeAhead: writeAhead!,
      });
      if (held !== undefined) return { lease: held.lease, object: held.object, blobs: held.blobs };
    }
    const held = await this.#call(
      Op.ACQUIRE,
      JSON.stringify(request),
      (body, fds) => this.#hold(decodeJson(body) as AcquireReply, fds),
    );
    return { lease: held.lease, object: held.object, blobs: held.blobs };
  }

  /**
   * Takes a CREATE lease on an object whose blobs are memfds the caller
   * filled (`AcquireOptions.memfds`), handed to the daemon with the request:
   * one, the most a request carries. This process's descriptor is closed
   * once the daemon has taken its own.
   */
  async #createFrom(request: AcquireRequest, memfds: readonly number[]): Promise<Acquired> {
    if (memfds.length !== 1) {
      throw new UnsupportedError(
        `Cannot hand over ${memfds.length} memfds: one per request over a Unix socket`,
      );
    }
    const held = await this.#call(
      Op.ACQUIRE,
      JSON.stringify(request),
      (body, fds) => this.#hold(decodeJson(body) as AcquireReply, fds),
      memfds[0],
    );
    this.#native.symbols.pk_close(memfds[0]!);
    return { lease: held.lease, object: held.object, blobs: held.blobs };
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
      return await this.#call(
        Op.ACQUIRE,
        JSON.stringify(request),
        (body, fds) => {
          // The daemon's copy of the memfd: this process has its own.
          for (const fd of fds) this.#native.symbols.pk_close(fd);
          taken = true;
          return this.#hold(decodeJson(body) as AcquireReply, [], own);
        },
        memfd.fd,
      );
    } catch (error) {
      if (!(error instanceof UnsupportedError)) throw error;
      this.#retired = writeAhead.close();
      this.#writeAhead = undefined;
      return undefined;
    } finally {
      if (!taken) writeAhead.done(size, memfd);
    }
  }
  async seal(leaseId: string): Promise<ObjectInfo> {
    const held = this.#leases.get(leaseId);
    const sealing = held?.access === Access.CREATE && !held.sealed ? held : undefined;
    if (sealing !== undefined) {
      sealing.sealing = true;
      // The daemon can seal the memfd only once no writable mapping of it is left.
      const unmapping: Promise<void>[] = [];
      for (const other of this.#leases.values()) {
        if (other.objectId !== sealing.objectId) continue;
        for (const blob of other.blobs) unmapping.push(blob.unmapWritable());
      }
      await Promise.all(unmapping).catch((error) => {
        sealing.sealing = false;
        throw error;
      });
    }
    try {
      const info = await this.#call(Op.SEAL, leaseId, (body) => decodeJson(body) as ObjectInfo);
      if (held !== undefined) {
        held.done = true;
        held.object = info;
      }
      return info;
    } finally {
      if (sealing !== undefined) sealing.sealing = false;
    }
  }

  async discard(leaseId: string): Promise<void> {
    await this.#call(Op.DISCARD, leaseId, none);
    this.#end(leaseId);
  }

  /**
   * Ends a lease. The request is sent without waiting for its reply: the
   * lease ends here at once, and on the daemon before any later request of
   * this connection. A lease past its expiry waits for the daemon's answer.
   */
  release(leaseId: string): Promise<void> {
    const held = this.#leases.get(leaseId);
    if (held === undefined) {
      if (this.#closedReason !== undefined) return Promise.reject(this.#closedError());
      return Promise.reject(
        new UnknownLeaseError(`Lease ${leaseId} was not granted on this connection`),
      );
    }
    const expiresAt = held.lease.expiresAt;
    if (expiresAt !== undefined && expiresAt <= Date.now()) {
      return this.#call(Op.RELEASE, leaseId, none).finally(() => this.#end(leaseId));
    }
    this.#end(leaseId);
    this.#send(Op.RELEASE, 0, Flag.ONE_WAY, leaseId);
    return Promise.resolve();
  }

  async renew(leaseId: string, ttl?: number): Promise<Lease> {
    const body = JSON.stringify({ lease: leaseId, ...(ttl === undefined ? {} : { ttl }) });
    const lease = await this.#call(Op.RENEW, body, (reply) => decodeJson(reply) as Lease);
    const held = this.#leases.get(leaseId);
    if (held !== undefined) held.lease = lease;
    return lease;
  }

  stat(objectId: string): Promise<ObjectInfo> {
    return this.#call(Op.STAT, objectId, (body) => decodeJson(body) as ObjectInfo);
  }

  list(): Promise<ObjectInfo[]> {
    return this.#call(Op.LIST, "", (body) => decodeJson(body) as ObjectInfo[]);
  }

  has(objectId: string): Promise<boolean> {
    return this.#call(Op.HAS, objectId, (body) => body[0] === 1);
  }

  stats(): Promise<PeerStats> {
    return this.#call(Op.STATS, "", (body) => decodeJson(body) as PeerStats);
  }

  /**
   * The daemon's status: version, uptime, clients, whether it shares memory.
   *
   * @throws {UnsupportedError} From a server that is not a daemon.
   */
  status(): Promise<DaemonStatus> {
    return this.#call(Op.STATUS, "", (body) => decodeJson(body) as DaemonStatus);
  }

  /**
   * Reads a URL through the daemon (one download per cluster); the reply
   * names the object holding the body.
   *
   * @throws {UnsupportedError} From a server with no read-through.
   */
  fetchOrigin(request: OriginRequest): Promise<OriginReply> {
    return this.#call(Op.FETCH, JSON.stringify(request), (body) => decodeJson(body) as OriginReply);
  }

  /**
   * The daemon's peer metrics and its socket server's counters (requests,
   * errors and bytes per operation, clients), with one METRICS request; see
   * `UdsServer.metrics()`.
   */
  metrics(): Promise<Record<string, number>> {
    return this.#call(Op.METRICS, "", (body) => decodeJson(body) as Record<string, number>);
  }

  /**
   * Creates, fills and seals an object; `Client.put` uses it. Objects up
   * to 64 KiB travel inline in one request, which costs one round trip
   * instead of two and no memfd. From 1 MiB, an object is copied into a
   * memfd this process has faulted in ahead of time, when one of its size
   * class is ready, and the daemon takes that memfd over: the put costs
   * the copy, and no page faults (see `UdsPeerOptions.writeAheadBytes`).
   * Other objects are written into the memfd the daemon gives them.
   */
  async putObject(
    chunks: readonly Uint8Array[],
    size: number,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    const plain = options.id === undefined && options.meta === undefined &&
      options.ttl === undefined;
    const fields = plain ? {} : {
      ...(options.meta === undefined ? {} : { meta: options.meta }),
      ...(options.ttl === undefined ? {} : { ttl: options.ttl, objectTtl: options.ttl }),
    };
    const request = options.id === undefined ? fields : { id: options.id, ...fields };
    if (size <= INLINE_PUT) {
      const fields = plain ? "{}" : JSON.stringify(request);
      const frame: Built = {
        room: putFrameRoom(fields, size),
        write: (into, id) => writePutFrame(into, id, fields, chunks, size),
      };
      return await this.#call(Op.PUT, frame, decodeInfo);
    }
    const writeAhead = size >= WRITE_AHEAD_PUT ? this.#writeAhead : undefined;
    const memfd = this.#closedReason === undefined ? writeAhead?.take(size) : undefined;
    try {
      if (memfd !== undefined) {
        const info = await this.#putOwn(writeAhead!, memfd, chunks, { ...request, size });
        if (info !== undefined) return info;
        // This daemon keeps no blobs in memfds: write into the ones it gives.
        this.#retired = writeAhead!.close();
        this.#writeAhead = undefined;
      }
      return await this.#putInto(chunks, options.id, { ...fields, size });
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
    const acquiring = this.#call(
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
      if (granted) this.#send(Op.RELEASE, 0, Flag.ONE_WAY, granted.lease.id);
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
      return await this.#call(Op.SEAL, lease, (body) => decodeJson(body) as ObjectInfo);
    } finally {
      this.#send(Op.RELEASE, 0, Flag.ONE_WAY, lease);
    }
  }

  /** Puts an object by writing its bytes into the memfd the daemon gives it. */
  async #putInto(
    chunks: readonly Uint8Array[],
    id: string | undefined,
    options: AcquireOptions,
  ): Promise<ObjectInfo> {
    const { lease, blobs } = await this.acquire(id, Access.CREATE, options);
    try {
      let at = 0;
      for (const chunk of chunks) {
        await blobs[0]!.write(at, chunk);
        at += chunk.length;
      }
      return await this.seal(lease.id);
    } finally {
      await this.release(lease.id).catch(() => {});
    }
  }

  /**
   * Ends every lease of this connection (views detach, mappings go; the
   * daemon releases them and discards unsealed objects) and disconnects.
   * Idempotent.
   */
  close(): Promise<void> {
    this.#shutdown("Connection closed");
    this.#closing ??= Promise.all([this.#channel.close(), this.#writeAhead?.close()]).then(
      () => {},
    );
    return this.#closing;
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Sends a request and waits for its reply. A request with a memfd (a
   * CREATE that hands it over) leaves at once, not at the end of the turn,
   * so that its caller can fill the memfd while it travels.
   */
  #call<T>(op: number, body: Body, decode: Decode<T>, memfd?: number): Promise<T> {
    if (this.#closedReason !== undefined) return Promise.reject(this.#closedError());
    const id = this.#nextId;
    this.#nextId = id === 0xffff_ffff ? 1 : id + 1;
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    this.#pending.set(id, {
      op,
      sentInSweep: UdsPeer.#sweeps,
      decode,
      takesFds: op === Op.ACQUIRE || op === Op.OPEN,
      resolve: resolve as (value: unknown) => void,
      reject,
    });
    this.#send(op, id, 0, body, memfd);
    if (memfd !== undefined) this.#channel.flush();
    return promise;
  }

  /** Handles a message from the daemon. */
  #message(bytes: Uint8Array, fds: number[], flags: number): void {
    let offset = 0;
    let fdAt = 0;
    const lost = flags & (Linux.MSG_TRUNC | Linux.MSG_CTRUNC);
    try {
      while (offset < bytes.length) {
        const header = readHeader(bytes, offset);
        if (typeof header === "string") {
          this.#fail(`malformed reply: ${header}`);
          return;
        }
        const body = bytes.subarray(offset + HEADER_SIZE, offset + HEADER_SIZE + header.length);
        offset += HEADER_SIZE + header.length;
        const frameFds = header.fds === 0 ? NO_FDS : fds.slice(fdAt, fdAt + header.fds);
        fdAt += header.fds;
        const pending = this.#pending.get(header.id);
        if (pending === undefined || !(header.flags & Flag.REPLY)) {
          for (const fd of frameFds) this.#native.symbols.pk_close(fd);
          if (this.#abandoned.delete(header.id)) this.#releaseLate(header, body);
          continue;
        }
        if (header.flags & Flag.MORE) {
          for (const fd of frameFds) this.#native.symbols.pk_close(fd);
          (pending.parts ??= []).push(body.slice());
          continue;
        }
        this.#pending.delete(header.id);
        const failed = header.flags & Flag.ERROR || lost || frameFds.length !== header.fds;
        if (failed || !pending.takesFds) {
          for (const fd of frameFds) this.#native.symbols.pk_close(fd);
        }
        if (header.flags & Flag.ERROR) {
          pending.reject(remoteError(body));
        } else if (failed) {
          pending.reject(new ProtocolError("Reply truncated: the message or its fds were cut"));
        } else {
          try {
            pending.resolve(pending.decode(joined(pending.parts, body), frameFds));
          } catch (error) {
            pending.reject(error as Error);
          }
        }
      }
    } finally {
      for (let i = fdAt; i < fds.length; i++) this.#native.symbols.pk_close(fds[i]!);
    }
  }

  /**
   * Takes a READ lease with OPEN: when this side still maps the object as
   * the daemon last described it, the reply says so in a few bytes, with no
   * info to parse and no fds to receive. Against a daemon that does not
   * know OPEN, it takes the lease with ACQUIRE.
   */
  async #open(objectId: string, options: AcquireOptions): Promise<Acquired> {
    const ttl = options.ttl;
    const known = this.#known.get(objectId);
    const pinned = known === undefined ? undefined : this.#pin(known);
    const request: OpenRequest = {
      objectId,
      known: pinned === undefined ? 0 : known!.serial,
      ...(ttl === undefined ? {} : { ttl }),
      ...(options.local === true ? { local: true } : {}),
    };
    let taken = false;
    try {
      return await this.#call(
        Op.OPEN,
        { room: openFrameRoom(objectId), write: (into, id) => writeOpenFrame(into, id, request) },
        (body, fds) => {
          taken = true;
          return this.#opened(objectId, ttl, known, pinned, body, fds);
        },
      );
    } catch (error) {
      if (
        error instanceof ProtocolError && !taken &&
        error.message === `Unknown operation: ${Op.OPEN}`
      ) {
        this.#opens = false;
        return await this.#acquire(objectId, Access.READ, options);
      }
      throw error;
    } finally {
      if (!taken) { for (const shared of pinned ?? []) shared.release(); }
    }
  }

  /** Another use of each mapping of a known object; undefined when one is gone. */
  #pin(known: Known): SharedMapping[] | undefined {
    const pinned: SharedMapping[] = [];
    for (const key of known.keys) {
      const shared = this.#mappings.share(key);
      if (shared === undefined) {
        for (const used of pinned) used.release();
        this.#known.delete(known.info.id);
        return undefined;
      }
      pinned.push(shared);
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
    const shared: SharedMapping[] = [];
    let leaseId: string | undefined;
    try {
      const reply = decodeOpenReply(body);
      if (reply === undefined) throw new ProtocolError("Malformed OPEN reply");
      leaseId = reply.leaseId;
      const lease: Lease = {
        id: reply.leaseId,
        objectId,
        access: Access.READ,
        ...(ttl === undefined ? {} : { ttl }),
        ...(reply.expiresAt === undefined ? {} : { expiresAt: reply.expiresAt }),
      };
      let object: ObjectInfo;
      if (reply.info === undefined) {
        if (known === undefined || pinned === undefined || reply.serial !== known.serial) {
          throw new ProtocolError(`OPEN reply names serial ${reply.serial}, not a known one`);
        }
        object = known.info;
        shared.push(...pinned.splice(0));
      } else {
        object = JSON.parse(reply.info) as ObjectInfo;
        const sizes = object.blobSizes;
        if (fds.length !== 0 && fds.length !== sizes.length) {
          throw new ProtocolError(`Reply carries ${fds.length} fds for ${sizes.length} blobs`);
        }
        for (let i = 0; i < fds.length; i++) shared.push(this.#mappings.map(fds[i]!, sizes[i]!));
        const keys = shared.map((used) => used.key);
        setNewest(this.#known, objectId, { serial: reply.serial, info: object, keys }, MAX_KNOWN);
      }
      const held = new HeldLease((op, body, decode) => this.#call(op, body, decode), {
        lease,
        object,
      });
      object.blobSizes.forEach((size, index) => {
        const source = shared.length === 0 ? {} : { shared: shared[index]! };
        held.blobs.push(new UdsBlob(this.#native, held, index, size, source));
      });
      shared.length = 0;
      this.#leases.set(lease.id, held);
      return held;
    } catch (error) {
      for (const used of shared) used.release();
      if (leaseId !== undefined) this.#send(Op.RELEASE, 0, Flag.ONE_WAY, leaseId);
      throw error instanceof SyntaxError ? new ProtocolError("Malformed OPEN reply") : error;
    } finally {
      for (const used of pinned ?? []) used.release();
      for (const fd of fds) symbols.pk_close(fd);
    }
  }

  /**
   * Takes over the memfds of an acquired object and records the lease: a
   * READ lease maps each one read-only and closes it, a CREATE or WRITE
   * lease keeps it until the lease ends.
   */
  #hold(reply: AcquireReply, fds: number[], own?: OwnMemfd): HeldLease {
    const { symbols } = this.#native;
    const held = new HeldLease((op, body, decode) => this.#call(op, body, decode), reply);
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
            source = { shared: this.#mappings.map(fd, sizes[i]!) };
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
      this.#send(Op.RELEASE, 0, Flag.ONE_WAY, reply.lease.id);
      throw error;
    }
    this.#leases.set(reply.lease.id, held);
    return held;
  }

  #end(leaseId: string): void {
    const held = this.#leases.get(leaseId);
    if (held === undefined) return;
    this.#leases.delete(leaseId);
    held.end();
  }

  #send(op: number, id: number, flags: number, body: Body, memfd?: number): void {
    const fds = memfd === undefined ? NO_FDS : [memfd];
    if (typeof body === "string") {
      this.#channel.pushBuilt(
        textFrameRoom(body),
        (into) => writeTextFrame(into, op, id, flags, body, fds.length),
        fds,
      );
    } else if (body instanceof Uint8Array) {
      this.#channel.push(encodeFrame(op, id, flags, body, fds.length), fds);
    } else {
      this.#channel.pushBuilt(body.room, (into) => body.write(into, id), fds);
    }
    if (flags & Flag.ONE_WAY) {
      // Nobody waits for a one-way request: it rides with the next request,
      // or leaves on its own at the end of this turn of the event loop. Not
      // a timer: setting one costs more than the request.
      if (this.#lazyFlushQueued) return;
      this.#lazyFlushQueued = true;
      setImmediate(() => {
        this.#lazyFlushQueued = false;
        this.#channel.flush();
      });
      return;
    }
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // Requests made in the same turn leave in one message.
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#channel.flush();
      if (this.#pending.size > 0) this.#reactor.waitSoon();
    });
  }

  /** Connections whose requests time out, all checked by one timer. */
  static readonly #timed = new Set<UdsPeer>();
  static #sweeper: ReturnType<typeof setInterval> | undefined;
  /** Time-out sweeps so far: a request sent during sweep n is at least (m - n - 1) sweeps old at sweep m. */
  static #sweeps = 0;

  /**
   * Checks `peer`'s requests for time-outs from now on. One timer serves every
   * connection: setting a timer costs more than a request, and a process
   * may hold a thousand idle connections.
   */
  static #watch(peer: UdsPeer): void {
    UdsPeer.#timed.add(peer);
    if (UdsPeer.#sweeper !== undefined) return;
    const sweeper = UdsPeer.#sweeper = setInterval(() => {
      UdsPeer.#sweeps++;
      for (const timed of UdsPeer.#timed) timed.#expire();
    }, SWEEP_MS);
    Deno.unrefTimer(sweeper);
  }

  static #unwatch(peer: UdsPeer): void {
    if (!UdsPeer.#timed.delete(peer) || UdsPeer.#timed.size > 0) return;
    clearInterval(UdsPeer.#sweeper);
    UdsPeer.#sweeper = undefined;
  }

  /** Fails the requests that have waited longer than the timeout, oldest first. */
  #expire(): void {
    for (const [id, pending] of this.#pending) {
      // A read-through lasts as long as its download: the socket closing ends it.
      if (pending.op === Op.FETCH) continue;
      if ((UdsPeer.#sweeps - pending.sentInSweep - 1) * SWEEP_MS < this.#requestTimeout) break;
      this.#pending.delete(id);
      if (pending.op === Op.ACQUIRE || pending.op === Op.OPEN) this.#abandoned.add(id);
      pending.reject(
        new StoreUnavailableError(
          `No reply from ${this.#path} within ${this.#requestTimeout} ms`,
        ),
      );
    }
  }

  /** Releases the lease a reply to an abandoned ACQUIRE granted, if it granted one. */
  #releaseLate(header: Header, body: Uint8Array): void {
    if (!(header.flags & Flag.REPLY) || header.flags & (Flag.ERROR | Flag.MORE)) return;
    let lease: unknown;
    try {
      lease = header.op === Op.OPEN
        ? decodeOpenReply(body)?.leaseId
        : (decodeJson(body) as AcquireReply).lease?.id;
    } catch {
      return;
    }
    if (typeof lease === "string") this.#send(Op.RELEASE, 0, Flag.ONE_WAY, lease);
  }

  #fail(reason: string): void {
    this.#shutdown(`Connection to ${this.#path} failed: ${reason}`);
    void this.#channel.close();
  }

  #shutdown(reason: string): void {
    if (this.#closedReason !== undefined) return;
    this.#closedReason = reason;
    UdsPeer.#unwatch(this);
    this.#abandoned.clear();
    for (const held of this.#leases.values()) held.end();
    this.#leases.clear();
    this.#mappings.close();
    const error = this.#closedError();
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }

  #closedError(): ClosedError {
    return new ClosedError(this.#closedReason ?? "Connection closed");
  }
}

function joined(parts: Uint8Array[] | undefined, last: Uint8Array): Uint8Array {
  if (parts === undefined) return last;
  const total = parts.reduce((sum, part) => sum + part.length, last.length);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const part of [...parts, last]) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

function remoteError(body: Uint8Array): Error {
  try {
    const { code, message } = decodeJson(body) as { code: unknown; message: unknown };
    if (typeof code === "string" && typeof message === "string") {
      return errorFromCode(code, message);
    }
  } catch {
    // Not JSON: described below.
  }
  return new ProtocolError("Malformed error reply");
}
