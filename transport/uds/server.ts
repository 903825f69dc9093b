import {
  AlreadyExistsError,
  asPackiceError,
  InvalidArgumentError,
  NativeUnavailableError,
  ProtocolError,
  UnknownLeaseError,
  UnsupportedError,
} from "../../core/errors.ts";
import type { DaemonStatus } from "../../core/status.ts";
import { type OriginReply, type OriginRequest, originRequest } from "../origin_fetch.ts";
import type { Blob } from "../../core/blob.ts";
import { Access } from "../../core/lease.ts";
import type { ObjectInfo } from "../../core/object.ts";
import type { Acquired, AcquireOptions, DirectPut, Peer } from "../../core/peer.ts";
import {
  type AcquireRequest,
  discardRequest,
  hasRequest,
  putRequest,
  releaseRequest,
  sealRequest,
  statRequest,
} from "../../core/requests.ts";
import { Errno, errnoError } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import { ensureNative, type Native } from "../../native/load.ts";
import { Channel, type ChannelHandler } from "./channel.ts";
import { connectSocket } from "./socket.ts";
import {
  type AcquireReply,
  CHUNK,
  decodeAcquire,
  decodeJson,
  decodePut,
  decodeRead,
  decodeRenew,
  decodeText,
  decodeWrite,
  encodeFrame,
  encodeText,
  Flag,
  type Header,
  HEADER_SIZE,
  MAX_FDS,
  MAX_MESSAGE,
  Op,
  peekHeader,
  PROTOCOL_VERSION,
  readHeader,
  textFrameRoom,
  writeTextFrame,
} from "./protocol.ts";
import { Reactor } from "../../native/reactor.ts";
import { UdsMetrics } from "./metrics.ts";
import { decodeOpen, type OpenReply, openReplyRoom, writeOpenReply } from "./open_frame.ts";
import { RecentTexts } from "./recent_texts.ts";
import { setNewest } from "./newest.ts";

/** Where a {@link UdsServer} reports events. */
export interface UdsServerLog {
  /** Something went wrong with one client; the server carries on. */
  warn(message: string): void;
  /** Connections and disconnections. */
  debug(message: string): void;
}

/** Options of {@link UdsServer.listen}. */
export interface UdsServerOptions {
  /** Mode of the socket file. Default `0o600`: only this user may connect. */
  readonly mode?: number;
  /** Bytes of replies that may wait for a client that does not read before it is disconnected. Default 8 MiB. */
  readonly maxQueuedBytes?: number;
  /** Requests of one client handled at once; more wait their turn. Default 256. */
  readonly maxInflight?: number;
  /** Where to report events. Default: nowhere. */
  readonly log?: UdsServerLog;
  /** Answers STATUS requests; without it they fail with `UNSUPPORTED`. */
  readonly status?: () => Promise<DaemonStatus>;
  /** Answers FETCH requests (a daemon's read-through); without it they fail with `UNSUPPORTED`. */
  readonly fetch?: (request: OriginRequest) => Promise<OriginReply>;
}

const silent: UdsServerLog = { warn: () => {}, debug: () => {} };
/** Memfds that may wait for one slow client, each a duplicate held open. */
const MAX_QUEUED_FDS = 1024;

/** What every connection of a server shares. */
interface Context {
  readonly native: Native;
  readonly reactor: Reactor;
  readonly peer: Peer;
  readonly maxQueuedBytes: number;
  readonly maxInflight: number;
  readonly log: UdsServerLog;
  readonly status: (() => Promise<DaemonStatus>) | undefined;
  readonly fetch: ((request: OriginRequest) => Promise<OriginReply>) | undefined;
  readonly metrics: UdsMetrics;
  /** Called when a connection has ended. */
  forget(connection: Connection): void;
}
const empty = new Uint8Array(0);
/** The options of most OPENs, and of local-only ones: shared, as no peer changes its options. */
const NO_OPTIONS: AcquireOptions = Object.freeze({});
const LOCAL: AcquireOptions = Object.freeze({ local: true });
/** How many objects a connection remembers sending to its client in OPEN replies. */
const MAX_SENT = 1024;

/** What an OPEN reply sent a client about an object, under a serial. */
interface Sent {
  readonly serial: number;
  /** The info object the peer handed out: a new one whenever the object changes. */
  readonly info: unknown;
  readonly fds: readonly number[];
}

/**
 * Serves a {@link Peer} on a Unix socket to the processes of this host.
 *
 * Each blob's memfd goes to the client with the ACQUIRE reply (`SCM_RIGHTS`),
 * so readers and writers share the object's memory without a copy. Leases
 * belong to the connection that acquired them: when a client goes away,
 * cleanly or not, its leases are released and its unsealed objects discarded.
 *
 * @example Serve a memory peer
 * ```ts ignore
 * import { MemoryPeer, UdsServer } from "@packice/packice";
 * await using peer = new MemoryPeer();
 * await using server = await UdsServer.listen(peer, "/tmp/packice-example.sock");
 * console.log(server.address); // "unix:///tmp/packice-example.sock"
 * ```
 */
export class UdsServer implements AsyncDisposable {
  readonly #context: Context;
  readonly #path: string;
  readonly #fd: number;
  readonly #token: number;
  readonly #connections = new Set<Connection>();
  #accepting = true;
  /** Accept failed for want of fds or memory, and has not succeeded since: warned once. */
  #starved = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closing: Promise<void> | undefined;

  /**
   * Listens on `path` and serves `peer` until closed. A socket file left by a
   * daemon that is gone is replaced.
   *
   * @param peer The peer to serve; the server does not close it.
   * @param path The socket path.
   * @param options Socket mode, limits and log.
   * @returns The listening server.
   * @throws {AlreadyExistsError} When a live server answers on `path`.
   * @throws {InvalidArgumentError} When `path` exists and is not a socket, or is too long.
   * @throws {NativeUnavailableError} When the native library cannot be loaded.
   *
   * @example Share a file system peer with the processes of this host
   * ```ts ignore
   * import { FileSystemPeer, UdsServer } from "@packice/packice";
   * await using peer = await FileSystemPeer.open({ dir: "/var/lib/packice" });
   * await using server = await UdsServer.listen(peer, "/run/packice.sock", { mode: 0o660 });
   * console.log(`Serving on ${server.address}`);
   * ```
   */
  static async listen(
    peer: Peer,
    path: string,
    options: UdsServerOptions = {},
  ): Promise<UdsServer> {
    const native = await ensureNative();
    if (native === undefined) {
      throw new NativeUnavailableError("Cannot serve on a Unix socket: native library unavailable");
    }
    // A memfd per object and a socket per client: the usual soft limit of 1024 is too low.
    native.symbols.pk_raise_nofile_limit();
    await removeStale(native, path);
    const cPath = new TextEncoder().encode(`${path}\0`);
    const fd = native.symbols.pk_uds_listen(cPath, 1024);
    if (fd < 0) {
      if (-fd === Errno.EADDRINUSE) {
        throw new AlreadyExistsError(`Cannot listen on ${path}: address in use`);
      }
      throw errnoError(-fd, `listen on ${path}`);
    }
    try {
      await Deno.chmod(path, options.mode ?? 0o600);
    } catch (error) {
      native.symbols.pk_close(fd);
      await Deno.remove(path).catch(() => {});
      throw error;
    }
    return new UdsServer(native, peer, path, fd, options);
  }

  private constructor(
    native: Native,
    peer: Peer,
    path: string,
    fd: number,
    options: UdsServerOptions,
  ) {
    this.#path = path;
    this.#fd = fd;
    this.#context = {
      native,
      reactor: Reactor.of(native),
      peer,
      maxQueuedBytes: options.maxQueuedBytes ?? 8 * 1024 * 1024,
      maxInflight: options.maxInflight ?? 256,
      log: options.log ?? silent,
      status: options.status,
      fetch: options.fetch,
      metrics: new UdsMetrics(),
      forget: (connection) => {
        if (this.#connections.delete(connection)) this.#context.metrics.clients--;
      },
    };
    this.#token = this.#context.reactor.adopt(fd, Linux.EPOLLIN, { ready: () => this.#accept() });
  }

  /** The socket path. */
  get path(): string {
    return this.#path;
  }

  /** The address for people and `connect()`: `unix:///path`. */
  get address(): string {
    return `unix://${this.#path}`;
  }

  /** How many clients are connected. */
  get connections(): number {
    return this.#connections.size;
  }

  /**
   * The server's counters by name, as `Peer.metrics()` gives them: requests
   * and errors per operation (`uds_requests_total{op="open"}`), bytes on the
   * socket, object bytes read and written, and clients. Clients get the same
   * figures, with the peer's, from the METRICS operation (`Client.metrics()`).
   */
  metrics(): Record<string, number> {
    return this.#context.metrics.snapshot();
  }

  /** Accepts the connections waiting, up to a budget per turn. */
  #accept(): void {
    if (!this.#accepting || this.#closing !== undefined) return;
    const { native, log } = this.#context;
    const symbols = native.symbols;
    for (let budget = 256; budget > 0; budget--) {
      const fd = symbols.pk_accept(this.#fd);
      if (fd === -Errno.EAGAIN) return;
      if (fd < 0) {
        if (-fd === Errno.ECONNABORTED || -fd === Errno.EINTR) continue;
        // Out of fds or memory: stop accepting for a moment instead of spinning.
        if (!this.#starved) {
          log.warn(`Cannot accept connections: ${errnoError(-fd, "accept").message}`);
        }
        this.#starved = true;
        this.#pause();
        return;
      }
      this.#starved = false;
      try {
        this.#connections.add(new Connection(this.#context, fd));
        this.#context.metrics.accepted++;
        this.#context.metrics.clients++;
      } catch (error) {
        log.warn(`Cannot serve a connection: ${asPackiceError(error).message}`);
      }
    }
  }

  /** Stops listening, disconnects every client (releasing their leases) and removes the socket. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#retry);
      const removed = this.#context.reactor.remove(this.#fd, this.#token);
      this.#context.native.symbols.pk_close(this.#fd);
      await Deno.remove(this.#path).catch(() => {});
      await Promise.all([...this.#connections].map((connection) => connection.close()));
      await removed;
    })();
    return this.#closing;
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #pause(): void {
    this.#accepting = false;
    this.#context.reactor.modify(this.#fd, this.#token, 0);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#closing !== undefined) return;
      this.#accepting = true;
      this.#context.reactor.modify(this.#fd, this.#token, Linux.EPOLLIN);
    }, 100);
  }
}

/** Refuses a live server on `path` and removes a stale socket file. */
async function removeStale(native: Native, path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) {
    throw new InvalidArgumentError(`Cannot listen on ${path}: it exists and is not a socket`);
  }
  const fd = connectSocket(native, path);
  if (fd >= 0) {
    native.symbols.pk_close(fd);
    throw new AlreadyExistsError(`Cannot listen on ${path}: a server already answers there`);
  }
  if (-fd !== Errno.ECONNREFUSED) throw errnoError(-fd, `connect to ${path}`);
  await Deno.remove(path);
}

/** One client of a {@link UdsServer}: its requests, replies and leases. */
class Connection implements ChannelHandler {
  readonly #context: Context;
  readonly #peer: Peer;
  readonly #channel: Channel;
  /** Leases granted on this connection and not yet ended by it. */
  readonly #leases = new Map<string, Acquired>();
  /** By object id, what the latest OPEN reply for it sent, oldest first. */
  readonly #sent = new Map<string, Sent>();
  #lastSerial = 0;
  /** Object ids opened and lease ids granted lately, to decode them again without a new string. */
  readonly #recent = new RecentTexts(8);
  #inflight = 0;
  /** Bytes of the READs under way: replies the send queue may yet have to hold. */
  #reading = 0;
  /** Frames received but not started yet, while too many are under way. */
  #backlog: { bytes: Uint8Array; fds: number[] } | undefined;
  #flushing = false;
  #closing: Promise<void> | undefined;

  constructor(context: Context, fd: number) {
    this.#context = context;
    this.#peer = context.peer;
    this.#channel = new Channel(context.native, context.reactor, fd, this, {
      maxQueuedBytes: context.maxQueuedBytes,
      maxQueuedFds: MAX_QUEUED_FDS,
      pauseWhileQueued: true,
      counters: context.metrics,
    });
    context.log.debug(`Client connected on fd ${fd}`);
  }

  message(bytes: Uint8Array, fds: number[], flags: number): void {
    if (flags & Linux.MSG_TRUNC) {
      // The kernel dropped the rest: answer the first frame, if it has a header.
      this.#closeAll(fds);
      const { op, id } = peekHeader(bytes);
      this.#fail(op, id, new ProtocolError(`Message too large: over ${MAX_MESSAGE} bytes`));
    } else if (fds.length === 0 || carriesMemfds(bytes, fds.length)) {
      this.#frames(bytes, fds);
    } else {
      this.#closeAll(fds);
      this.#refuseAll(bytes, "Unexpected file descriptors: only ACQUIRE carries any, its memfds");
    }
    this.#scheduleFlush();
  }

  /** Answers every frame of a message with a protocol error. */
  #refuseAll(bytes: Uint8Array, reason: string): void {
    for (let offset = 0; offset < bytes.length;) {
      const header = readHeader(bytes, offset);
      if (typeof header === "string") {
        const { op, id } = peekHeader(bytes.subarray(offset));
        this.#fail(op, id, new ProtocolError(`Malformed frame: ${header}`));
        return;
      }
      offset += HEADER_SIZE + header.length;
      if (!(header.flags & Flag.ONE_WAY)) {
        this.#fail(header.op, header.id, new ProtocolError(reason));
      }
    }
  }

  drained(): void {
    this.#resume();
  }

  /**
   * Starts each frame of a message, handing each ACQUIRE that carries
   * memfds its own from `fds`, in order. Frames beyond what the connection may have under way
   * wait in the backlog with the fds still to come, and reading stops until
   * it is empty again. Fds left over at the end are closed.
   */
  #frames(bytes: Uint8Array, fds: number[]): void {
    let offset = 0;
    let fdAt = 0;
    try {
      while (offset < bytes.length) {
        if (!this.#mayStart()) {
          // The message buffer is reused: keep a copy of the rest.
          this.#backlog = { bytes: bytes.slice(offset), fds: fds.slice(fdAt) };
          fdAt = fds.length;
          this.#channel.setReading(false);
          return;
        }
        const header = readHeader(bytes, offset);
        if (typeof header === "string") {
          // The framing is lost: answer once and drop the rest of the message.
          const { op, id } = peekHeader(bytes.subarray(offset));
          this.#fail(op, id, new ProtocolError(`Malformed frame: ${header}`));
          return;
        }
        const start = offset + HEADER_SIZE;
        offset = start + header.length;
        const body = bytes.subarray(start, offset);
        const memfds = header.fds === 0 ? NO_FDS : fds.slice(fdAt, fdAt + header.fds);
        fdAt += header.fds;
        this.#dispatch(header, body, memfds);
      }
    } finally {
      if (fdAt < fds.length) this.#closeAll(fds.slice(fdAt));
    }
  }

  #closeAll(fds: readonly number[]): void {
    for (const fd of fds) this.#context.native.symbols.pk_close(fd);
  }

  /**
   * Whether another request may start: few enough under way, no replies
   * waiting to go, and room in the send queue for the replies of every READ
   * under way plus one more, so that a client that pipelines the READs of a
   * large object and reads their replies late is slowed down, not cut off.
   */
  #mayStart(): boolean {
    return this.#inflight < this.#context.maxInflight && this.#channel.queuedBytes === 0 &&
      (this.#reading === 0 || this.#reading + CHUNK <= this.#context.maxQueuedBytes / 2);
  }

  /** Starts frames from the backlog as room frees up, then reads again. */
  #resume(): void {
    if (this.#channel.closed || !this.#mayStart()) return;
    const backlog = this.#backlog;
    this.#backlog = undefined;
    if (backlog !== undefined) this.#frames(backlog.bytes, backlog.fds);
    if (this.#backlog === undefined) this.#channel.setReading(true);
    this.#scheduleFlush();
  }

  closed(reason: string): void {
    this.#context.log.debug(`Client disconnected: ${reason}`);
    if (reason !== "connection closed") {
      this.#context.log.warn(`Disconnected a client: ${reason}`);
    }
    void this.#end();
  }

  /** Disconnects the client and releases its leases. */
  close(): Promise<void> {
    this.#closing ??= this.#channel.close().then(() => this.#end());
    return this.#closing;
  }

  async #end(): Promise<void> {
    this.#context.forget(this);
    this.#closeAll(this.#backlog?.fds ?? []);
    this.#backlog = undefined;
    const leases = [...this.#leases.keys()];
    this.#leases.clear();
    await Promise.all(leases.map((lease) => this.#peer.release(lease).catch(() => {})));
  }

  /** Starts a request; the memfds an ACQUIRE carries are closed unless the peer takes them. */
  #dispatch(header: Header, body: Uint8Array, memfds: number[] = NO_FDS): void {
    const { op, id, flags } = header;
    this.#context.metrics.request(op, HEADER_SIZE + header.length);
    if (header.version !== PROTOCOL_VERSION) {
      this.#refuse(
        header,
        memfds,
        new ProtocolError(`Unsupported protocol version: ${header.version}`),
      );
      return;
    }
    if (flags & (Flag.REPLY | Flag.ERROR | Flag.MORE) || header.fds !== memfds.length) {
      this.#refuse(header, memfds, new ProtocolError(`Invalid request flags: ${flags}`));
      return;
    }
    if (op === Op.RELEASE && flags & Flag.ONE_WAY && memfds.length === 0) {
      this.#releaseOneWay(body);
      return;
    }
    let work: Promise<Uint8Array | string | undefined>;
    try {
      work = memfds.length === 0
        ? this.#handle(op, id, body)
        : this.#acquire(id, decodeAcquire(body), memfds);
    } catch (error) {
      this.#refuse(header, memfds, error);
      return;
    }
    this.#inflight++;
    this.#context.reactor.busy(1);
    work.then(
      (reply) => {
        try {
          if (reply !== undefined && !(flags & Flag.ONE_WAY)) this.#reply(op, id, reply);
        } finally {
          this.#settled();
        }
      },
      (error) => {
        try {
          if (!(flags & Flag.ONE_WAY)) this.#fail(op, id, error);
        } finally {
          this.#settled();
        }
      },
    );
  }

  /** Answers a request that did not start with `error`, and closes the memfds it carries. */
  #refuse(header: Header, memfds: readonly number[], error: unknown): void {
    this.#closeAll(memfds);
    if (!(header.flags & Flag.ONE_WAY)) this.#fail(header.op, header.id, error);
  }

  /**
   * Ends a lease whose client waits for no answer, as most releases are:
   * there is nothing to reply and nothing for the next request to wait on.
   */
  #releaseOneWay(body: Uint8Array): void {
    let lease: string;
    try {
      lease = this.#owned(releaseRequest(this.#recent.decode(body)));
    } catch {
      return;
    }
    // Ended whatever the peer says: a lease that fails to release has expired.
    this.#leases.delete(lease);
    this.#peer.release(lease).catch(() => {});
  }

  /** A request has been answered: the reply may go out, and the next request start. */
  #settled(): void {
    this.#inflight--;
    this.#context.reactor.busy(-1);
    this.#scheduleFlush();
    // Replies waiting for the flush go first: the backlog resumes after it.
    if (this.#backlog !== undefined && !this.#channel.pending) this.#resume();
  }

  /** Parses a request synchronously (the body is reused after this) and starts it. */
  #handle(op: number, id: number, body: Uint8Array): Promise<Uint8Array | string | undefined> {
    const peer = this.#peer;
    switch (op) {
      case Op.ACQUIRE:
        return this.#acquire(id, decodeAcquire(body));
      case Op.SEAL: {
        const lease = this.#owned(sealRequest(decodeText(body)));
        return peer.seal(lease).then((info) => this.#written(info));
      }
      case Op.DISCARD: {
        const lease = this.#owned(discardRequest(decodeText(body)));
        return peer.discard(lease).then(() => {
          this.#leases.delete(lease);
          return empty;
        });
      }
      case Op.RELEASE: {
        const lease = this.#owned(releaseRequest(decodeText(body)));
        // Ended whatever the peer says: a lease that fails to release has expired.
        this.#leases.delete(lease);
        return peer.release(lease).then(() => empty);
      }
      case Op.RENEW: {
        const { leaseId, ttl } = decodeRenew(body);
        return peer.renew(this.#owned(leaseId), ttl).then(json);
      }
      case Op.STAT:
        return peer.stat(statRequest(decodeText(body))).then(json);
      case Op.LIST:
        return peer.list().then(json);
      case Op.HAS:
        return peer.has(hasRequest(decodeText(body))).then((has) => Uint8Array.of(has ? 1 : 0));
      case Op.STATS:
        return peer.stats().then(json);
      case Op.STATUS: {
        const status = this.#context.status;
        if (status === undefined) {
          throw new UnsupportedError("No status: this server is not a daemon");
        }
        return status().then(json);
      }
      case Op.FETCH: {
        const fetch = this.#context.fetch;
        if (fetch === undefined) throw new UnsupportedError("No fetch: this server reads no URL");
        return fetch(originRequest(decodeJson(body))).then(json);
      }
      case Op.READ:
        return this.#read(body);
      case Op.WRITE:
        return this.#write(body);
      case Op.PUT:
        return this.#put(body);
      case Op.OPEN:
        return this.#open(id, body);
      case Op.METRICS:
        return this.#metrics();
      default:
        throw new ProtocolError(`Unknown operation: ${op}`);
    }
  }

  /** Grants a lease; `memfds`, which a CREATE may carry, are closed unless the peer takes them. */
  async #acquire(id: number, request: AcquireRequest, memfds: number[] = []): Promise<undefined> {
    const options: AcquireOptions = {
      ...(request.ttl === undefined ? {} : { ttl: request.ttl }),
      ...(request.objectTtl === undefined ? {} : { objectTtl: request.objectTtl }),
      ...(request.size === undefined ? {} : { size: request.size }),
      ...(request.meta === undefined ? {} : { meta: request.meta }),
      ...(memfds.length === 0 ? {} : { memfds }),
      ...(request.local === true ? { local: true } : {}),
    };
    let acquired: Acquired;
    try {
      if (memfds.length > 0 && request.access !== Access.CREATE) {
        throw new InvalidArgumentError(`Invalid memfds: only a CREATE lease takes them`);
      }
      acquired = await this.#peer.acquire(request.objectId, request.access, options);
    } catch (error) {
      this.#closeAll(memfds);
      throw error;
    }
    const fds = this.#keep(acquired);
    if (fds === undefined) return undefined;
    if (acquired.lease.access === Access.READ) {
      this.#context.metrics.readBytes += acquired.object.size;
    }
    const reply: AcquireReply = { lease: acquired.lease, object: acquired.object };
    // The fds stay open until the flush of this turn: the lease holds the blobs,
    // and only a timer (expiry) or another message (release) could end it.
    const text = json(reply);
    this.#channel.pushBuilt(
      textFrameRoom(text),
      (into) => writeTextFrame(into, Op.ACQUIRE, id, Flag.REPLY, text, fds.length),
      fds,
    );
    return undefined;
  }

  /**
   * Records a lease granted to this connection and returns its blobs' fds;
   * undefined, with the lease released, when the client has gone meanwhile.
   */
  #keep(acquired: Acquired): number[] | undefined {
    const leaseId = acquired.lease.id;
    if (this.#channel.closed) {
      this.#peer.release(leaseId).catch(() => {});
      return undefined;
    }
    let fds: number[];
    try {
      fds = fdsOf(acquired);
    } catch (error) {
      this.#peer.release(leaseId).catch(() => {});
      throw error;
    }
    this.#leases.set(leaseId, acquired);
    return fds;
  }

  /**
   * Grants a READ lease in compact form (see `open_frame.ts`). The info and
   * the fds are left out when this connection sent the client, under the
   * serial it names, the same info object with the same fds: the same
   * sealed bytes, which it still maps. (A tiered peer may have moved those
   * bytes to another memfd with the same fd number meanwhile; they are the
   * same bytes, and the client keeps the old memfd only while it reads.)
   */
  async #open(id: number, body: Uint8Array): Promise<undefined> {
    const request = decodeOpen(body, this.#recent);
    if (request === undefined) throw new ProtocolError("Malformed OPEN request");
    const { objectId, known, ttl, local } = request;
    const acquired = await this.#peer.acquire(
      objectId,
      Access.READ,
      ttl === undefined ? (local ? LOCAL : NO_OPTIONS) : { ttl, ...(local ? LOCAL : {}) },
    );
    const fds = this.#keep(acquired);
    if (fds === undefined) return undefined;
    this.#context.metrics.readBytes += acquired.object.size;
    // Its release will spell it.
    this.#recent.add(acquired.lease.id);
    const sent = this.#sent.get(objectId);
    const same = known !== 0 && sent !== undefined && sent.serial === known &&
      sent.info === acquired.object && sameFds(sent.fds, fds);
    let serial = known;
    if (!same) {
      serial = this.#lastSerial = this.#lastSerial === 0xffff_ffff ? 1 : this.#lastSerial + 1;
      setNewest(this.#sent, objectId, { serial, info: acquired.object, fds }, MAX_SENT);
    }
    const expiresAt = acquired.lease.expiresAt;
    const reply: OpenReply = {
      serial,
      leaseId: acquired.lease.id,
      ...(expiresAt === undefined ? {} : { expiresAt }),
      ...(same ? {} : { info: json(acquired.object) }),
    };
    const attached = same ? [] : fds;
    this.#channel.pushBuilt(
      openReplyRoom(reply),
      (into) => writeOpenReply(into, id, Flag.REPLY, reply, attached.length),
      attached,
    );
    return undefined;
  }

  async #read(body: Uint8Array): Promise<Uint8Array> {
    const request = decodeRead(body);
    if (request === undefined) throw new ProtocolError("Malformed READ request");
    if (request.length > CHUNK) {
      throw new InvalidArgumentError(`Invalid length: at most ${CHUNK} bytes per read`);
    }
    this.#reading += request.length;
    try {
      return await this.#blob(request.lease, request.blob).read(request.offset, request.length);
    } finally {
      this.#reading -= request.length;
    }
  }

  async #write(body: Uint8Array): Promise<Uint8Array> {
    const request = decodeWrite(body);
    if (request === undefined) throw new ProtocolError("Malformed WRITE request");
    await this.#blob(request.lease, request.blob).write(request.offset, request.bytes);
    return empty;
  }

  /** Creates, writes, seals and releases a small object whose bytes came inline. */
  async #put(body: Uint8Array): Promise<string> {
    const decoded = decodePut(body);
    if (decoded === undefined) throw new ProtocolError("Malformed PUT request");
    const { bytes } = decoded;
    const request = putRequest(decoded.request);
    const peer = this.#peer as Peer & Partial<DirectPut>;
    if (typeof peer.putObject === "function") {
      // The bytes are a copy of the request's, this put's to give up.
      const put = { ...request, transfer: true };
      return this.#written(await peer.putObject([bytes], bytes.length, put));
    }
    const { id, meta, ttl } = request;
    const { lease, blobs } = await this.#peer.acquire(id, Access.CREATE, {
      size: bytes.length,
      ...(meta === undefined ? {} : { meta }),
      ...(ttl === undefined ? {} : { ttl, objectTtl: ttl }),
    });
    try {
      await blobs[0]!.write(0, bytes);
      return this.#written(await this.#peer.seal(lease.id));
    } finally {
      await this.#peer.release(lease.id).catch(() => {});
    }
  }

  /** A blob of a lease on this connection, for peers whose blobs have no fd. */
  #blob(lease: string, index: number): Blob {
    const blob = this.#leases.get(this.#owned(lease))!.blobs[index];
    if (blob === undefined) throw new InvalidArgumentError(`Invalid blob index: ${index}`);
    return blob;
  }

  #owned(lease: string): string {
    if (!this.#leases.has(lease)) {
      throw new UnknownLeaseError(`Lease ${lease} was not granted on this connection`);
    }
    return lease;
  }

  #reply(op: number, id: number, body: Uint8Array | string): void {
    if (typeof body === "string" && body.length * 3 <= CHUNK) {
      this.#pushText(op, id, Flag.REPLY, body);
    } else if (typeof body === "string") {
      this.#replyChunked(op, id, encodeText(body));
    } else if (body.length > CHUNK) {
      this.#replyChunked(op, id, body);
    } else {
      this.#channel.push(encodeFrame(op, id, Flag.REPLY, body));
    }
  }

  #replyChunked(op: number, id: number, body: Uint8Array): void {
    for (let at = 0; at < body.length || at === 0; at += CHUNK) {
      const end = Math.min(at + CHUNK, body.length);
      const more = end < body.length ? Flag.MORE : 0;
      this.#channel.push(encodeFrame(op, id, Flag.REPLY | more, body.subarray(at, end)));
      if (end === body.length) break;
    }
  }

  /** Counts the bytes of an object sealed through this server; its info as the reply. */
  #written(info: ObjectInfo): string {
    this.#context.metrics.writtenBytes += info.size;
    return json(info);
  }

  /** The peer's metrics and the server's counters, for METRICS. */
  async #metrics(): Promise<string> {
    const own = await this.#peer.metrics?.();
    return json({ ...own, ...this.#context.metrics.snapshot() });
  }

  #fail(op: number, id: number, error: unknown): void {
    this.#context.metrics.error(op);
    const { code, message } = asPackiceError(error);
    this.#pushText(op, id, Flag.REPLY | Flag.ERROR, json({ code, message }));
  }

  #pushText(op: number, id: number, flags: number, text: string): void {
    this.#channel.pushBuilt(
      textFrameRoom(text),
      (into) => writeTextFrame(into, op, id, flags, text),
    );
  }

  /**
   * Sends the replies gathered so far once the requests of this turn have
   * settled (they usually do within a few microtasks), so that pipelined
   * requests get their replies in one message.
   */
  #scheduleFlush(): void {
    if (this.#flushing || !this.#channel.pending) return;
    this.#flushing = true;
    let hops = 0;
    const tick = () => {
      if (this.#inflight > 0 && hops++ < 16) {
        queueMicrotask(tick);
        return;
      }
      this.#flushing = false;
      this.#channel.flush();
      if (this.#backlog !== undefined) this.#resume();
      // The client usually sends its next request as soon as it has the reply.
      this.#context.reactor.waitSoon();
    };
    queueMicrotask(tick);
  }
}

/** The fds of an acquired object's blobs, in order, or none when they have none. */
function fdsOf(acquired: Acquired): number[] {
  const fds: number[] = [];
  for (const blob of acquired.blobs) {
    const fd = blob.fd;
    if (fd === undefined) break;
    fds.push(fd);
  }
  if (fds.length !== 0 && fds.length !== acquired.blobs.length) {
    throw new ProtocolError(`Cannot share object ${acquired.object.id}: some blobs have no fd`);
  }
  if (fds.length > MAX_FDS) {
    throw new InvalidArgumentError(
      `Cannot share object ${acquired.object.id}: ${fds.length} blobs, at most ${MAX_FDS} over a Unix socket`,
    );
  }
  return fds;
}

function sameFds(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The memfds of a frame that carries none; never changed. */
const NO_FDS: number[] = [];

/** A reply body as JSON text, encoded straight into its frame. */
function json(value: unknown): string {
  return JSON.stringify(value);
}

/**
 * Whether the fds of a message are the memfds of its ACQUIRE frames, as
 * many in all as came: no other frame may carry any.
 */
function carriesMemfds(bytes: Uint8Array, count: number): boolean {
  let claimed = 0;
  for (let offset = 0; offset < bytes.length;) {
    const header = readHeader(bytes, offset);
    if (typeof header === "string") return false;
    if (header.fds !== 0 && header.op !== Op.ACQUIRE) return false;
    claimed += header.fds;
    offset += HEADER_SIZE + header.length;
  }
  return claimed === count;
}
