/**
 * UdsPeer: one idea, the `Peer` API spoken to a daemon over its Unix socket.
 * Each call is a few lines handing over to the file that holds its part
 * (`requests.ts`, `client_leases.ts`, `client_open.ts`, `client_puts.ts`,
 * `client_arriving.ts`); the class stays whole as the one place that lists
 * what the transport offers, hence its length.
 *
 * @module
 */
import type {
  Acquired,
  AcquireOptions,
  ArrivingObject,
  ArrivingRead,
  DirectDelete,
  DirectPut,
  DirectRead,
  IdPut,
  Peer,
  PeerStats,
  PutOptions,
} from "../../core/peer.ts";
import { deleteInSteps } from "../../core/delete_in_steps.ts";
import {
  ErrorCode,
  InvalidArgumentError,
  NativeUnavailableError,
  ProtocolError,
  UnknownLeaseError,
} from "../../core/errors.ts";
import { Access, type Lease } from "../../core/lease.ts";
import {
  listInPages,
  type ListPage,
  type ListPageOptions,
  listPageRequest,
} from "../../core/list_page.ts";
import type { ObjectInfo } from "../../core/object.ts";
import type { DaemonStatus, StatusSource } from "../../core/status.ts";
import type { OriginReply, OriginRequest, OriginSource } from "../origin_fetch.ts";
import { ensureNative, type Native } from "../../native/load.ts";
import { Reactor } from "../../native/reactor.ts";
import { Channel } from "./channel.ts";
import { ClientLeases, HeldLease } from "./client_leases.ts";
import { ClientOpens } from "./client_open.ts";
import { ClientPuts } from "./client_puts.ts";
import { readArriving } from "./client_arriving.ts";
import { MappingCache } from "./mapping_cache.ts";
import { type AcquireReply, type AcquireRequest, decodeJson, MAX_FDS, Op } from "./protocol.ts";
import { isFromDaemon, none, Requests } from "./requests.ts";
import { connectRetrying } from "./socket.ts";

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

const DEFAULT_WRITE_AHEAD_BYTES = 256 * 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT = 60_000;

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
export class UdsPeer
  implements
    Peer,
    DirectPut,
    IdPut,
    DirectDelete,
    DirectRead,
    StatusSource,
    OriginSource,
    ArrivingRead {
  readonly #path: string;
  readonly #channel: Channel;
  readonly #requests: Requests;
  readonly #leases: ClientLeases;
  readonly #mappings: MappingCache;
  readonly #opens: ClientOpens;
  readonly #puts: ClientPuts;
  /** Whether the daemon may know DELETE: none has answered that it does not. */
  #deletes = true;
  /** Whether the daemon knows DELETE: one has succeeded, so none needs a way back. */
  #deletesKnown = false;
  readonly #deleted = (): void => {
    this.#deletesKnown = true;
  };
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
    const fd = await connectRetrying(native, path, options.connectTimeout ?? 5000);
    return new UdsPeer(
      native,
      path,
      fd,
      options.writeAheadBytes ?? DEFAULT_WRITE_AHEAD_BYTES,
      options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT,
    );
  }

  private constructor(
    native: Native,
    path: string,
    fd: number,
    writeAheadBytes: number,
    requestTimeout: number,
  ) {
    this.#path = path;
    const reactor = Reactor.of(native);
    this.#channel = new Channel(native, reactor, fd, {
      message: (bytes, fds, flags) => this.#requests.message(bytes, fds, flags),
      messageIn: (buffer, length, fds, flags) =>
        this.#requests.messageIn(buffer, length, fds, flags),
      closed: (reason) => this.#shutdown(`Connection to ${path} lost: ${reason}`),
    }, { maxQueuedBytes: Number.MAX_SAFE_INTEGER });
    this.#requests = new Requests({
      native,
      reactor,
      channel: this.#channel,
      path,
      timeout: requestTimeout,
      fail: (reason) => this.#fail(reason),
    });
    this.#mappings = new MappingCache(native);
    this.#leases = new ClientLeases(native, this.#requests, this.#mappings);
    this.#opens = new ClientOpens(
      native,
      this.#requests,
      this.#leases,
      this.#mappings,
      (objectId, options) => this.#acquire(objectId, Access.READ, options),
      this,
    );
    this.#puts = new ClientPuts(native, this.#requests, this.#leases, writeAheadBytes);
  }

  /** The socket path. */
  get path(): string {
    return this.#path;
  }

  /** Whether {@link UdsPeer.close} has run or the connection has ended. */
  get closed(): boolean {
    return this.#requests.closedReason !== undefined;
  }

  acquire(
    objectId: string | undefined,
    access: Access,
    options: AcquireOptions = {},
  ): Promise<Acquired> {
    if (
      access === Access.READ && objectId !== undefined && options.memfds === undefined &&
      this.#opens.available
    ) {
      return this.#opens.open(objectId, options, asAcquired, false);
    }
    return this.#acquire(objectId, access, options);
  }

  /**
   * A READ lease handed to `make` as its reply is handled (see
   * `DirectRead`): `Client.get` makes its handle there, with no promise
   * between the reply and the caller.
   *
   * @param retry Tries the read again elsewhere after it failed on `from`
   *   with `error` (a connection that reconnects), or returns undefined to
   *   fail with the error; one function serves every read.
   */
  acquireRead<T>(
    objectId: string,
    options: AcquireOptions,
    make: (acquired: Acquired) => T | Promise<T>,
    retry?: <U>(
      error: Error,
      objectId: string,
      options: AcquireOptions,
      make: (acquired: Acquired) => U | Promise<U>,
      from: Peer,
    ) => Promise<U> | undefined,
  ): Promise<T> {
    if (options.memfds === undefined && this.#opens.available) {
      return this.#opens.open(objectId, options, make, true, retry);
    }
    const read = this.#acquire(objectId, Access.READ, options).then(make);
    return retry === undefined
      ? read
      : read.catch((error) => retry(error, objectId, options, make, this) ?? Promise.reject(error));
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
    let held: HeldLease | undefined;
    if (options.memfds !== undefined) {
      held = await this.#puts.createFrom(request, options.memfds);
    } else if (access === Access.CREATE && typeof options.size === "number") {
      held = await this.#puts.createAhead(request, options.size);
    }
    held ??= await this.#requests.call(
      Op.ACQUIRE,
      JSON.stringify(request),
      (body, fds) => this.#leases.hold(decodeJson(body) as AcquireReply, fds),
    );
    return { lease: held.lease, object: held.object, blobs: held.blobs };
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
      const info = await this.#requests.call(
        Op.SEAL,
        leaseId,
        (body) => decodeJson(body) as ObjectInfo,
      );
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
    await this.#requests.call(Op.DISCARD, leaseId, none);
    this.#leases.end(leaseId);
  }

  /**
   * Ends a lease. The request is sent without waiting for its reply: the
   * lease ends here at once, and on the daemon before any later request of
   * this connection. A lease past its expiry waits for the daemon's answer.
   */
  release(leaseId: string): Promise<void> {
    const held = this.#leases.get(leaseId);
    if (held === undefined) {
      if (this.closed) return Promise.reject(this.#requests.closedError());
      return Promise.reject(
        new UnknownLeaseError(`Lease ${leaseId} was not granted on this connection`),
      );
    }
    if (this.#endNow(held)) return Promise.resolve();
    return this.#requests.call(Op.RELEASE, leaseId, none).finally(() => this.#leases.end(leaseId));
  }

  /**
   * Ends a lease of {@link UdsPeer.acquireRead} (or any lease of this
   * connection) as {@link UdsPeer.release} does, dropping what it would
   * reject with.
   */
  releaseQuietly(acquired: Acquired): void {
    const held = acquired instanceof HeldLease && this.#leases.holds(acquired)
      ? acquired
      : this.#leases.get(acquired.lease.id);
    if (held === undefined || this.#endNow(held)) return;
    this.#requests.call(Op.RELEASE, held.leaseId, none).then(ignore, ignore).finally(() =>
      this.#leases.endHeld(held)
    );
  }

  /**
   * Ends a lease here at once, and on the daemon before any later request of
   * this connection, with no reply to wait for; false, with nothing done,
   * for a lease past its expiry, which waits for the daemon's answer.
   */
  #endNow(held: HeldLease): boolean {
    const expiresAt = held.lease.expiresAt;
    if (expiresAt !== undefined && expiresAt <= Date.now()) return false;
    this.#leases.endHeld(held);
    this.#requests.release(held.lease.id);
    return true;
  }

  async renew(leaseId: string, ttl?: number): Promise<Lease> {
    const body = JSON.stringify({ lease: leaseId, ...(ttl === undefined ? {} : { ttl }) });
    const lease = await this.#requests.call(Op.RENEW, body, (reply) => decodeJson(reply) as Lease);
    const held = this.#leases.get(leaseId);
    if (held !== undefined) held.lease = lease;
    return lease;
  }

  /**
   * An object the daemon is still fetching from another, streamed as its
   * pieces verify there (ARRIVE); undefined when the daemon holds it.
   */
  readArriving(objectId: string): Promise<ArrivingObject | undefined> {
    return readArriving(this.#requests, objectId);
  }

  stat(objectId: string): Promise<ObjectInfo> {
    return this.#requests.call(Op.STAT, objectId, (body) => decodeJson(body) as ObjectInfo);
  }

  /** Every object, pulled a page at a time. */
  list(): Promise<ObjectInfo[]> {
    return listInPages(this);
  }

  /** A page of the list (LIST with a body). */
  listPage(options: ListPageOptions = {}): Promise<ListPage> {
    listPageRequest(options, 10); // Its stage the server checks.
    return this.#requests.call(Op.LIST, JSON.stringify(options), (body) => {
      const reply = decodeJson(body);
      // A server from before pages answers the whole list.
      return Array.isArray(reply) ? { objects: reply as ObjectInfo[] } : reply as ListPage;
    });
  }

  has(objectId: string): Promise<boolean> {
    return this.#requests.call(Op.HAS, objectId, (body) => body[0] === 1);
  }

  stats(): Promise<PeerStats> {
    return this.#requests.call(Op.STATS, "", (body) => decodeJson(body) as PeerStats);
  }

  /**
   * The daemon's status: version, uptime, clients, whether it shares memory.
   *
   * @throws {UnsupportedError} From a server that is not a daemon.
   */
  status(): Promise<DaemonStatus> {
    return this.#requests.call(Op.STATUS, "", (body) => decodeJson(body) as DaemonStatus);
  }

  /**
   * Reads a URL through the daemon (one download per cluster); the reply
   * names the object holding the body.
   *
   * @throws {UnsupportedError} From a server with no read-through.
   */
  fetchOrigin(request: OriginRequest): Promise<OriginReply> {
    return this.#requests.call(
      Op.FETCH,
      JSON.stringify(request),
      (body) => decodeJson(body) as OriginReply,
    );
  }

  /**
   * The daemon's peer metrics and its socket server's counters (requests,
   * errors and bytes per operation, clients), with one METRICS request; see
   * `UdsServer.metrics()`.
   */
  metrics(): Promise<Record<string, number>> {
    return this.#requests.call(
      Op.METRICS,
      "",
      (body) => decodeJson(body) as Record<string, number>,
    );
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
  putObject(
    chunks: readonly Uint8Array[],
    size: number,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    return this.#puts.putObject(this, chunks, size, options);
  }

  /**
   * As {@link UdsPeer.putObject}, answered with the id alone: a plain put of
   * up to 64 KiB is one request whose reply settles the returned promise
   * with the id read from it, with no info made; `Client.put` uses it.
   */
  putId(bytes: Uint8Array, options: PutOptions): Promise<string> {
    return this.#puts.putId(this, bytes, options);
  }

  /**
   * Deletes an object with one DELETE request; `Client.delete` uses it.
   * Against a daemon that does not know DELETE, which answers it with a
   * `PROTOCOL` error, it takes a WRITE lease and discards it, and does so
   * from then on.
   */
  deleteObject(objectId: string): Promise<void> {
    if (!this.#deletes) return deleteInSteps(this, objectId);
    if (this.#deletesKnown) return this.#requests.call(Op.DELETE, objectId, none);
    return this.#requests.call(Op.DELETE, objectId, this.#deleted, undefined, (error) => {
      if (
        !(error instanceof ProtocolError && error.code === ErrorCode.PROTOCOL &&
          isFromDaemon(error))
      ) return undefined;
      this.#deletes = false;
      return deleteInSteps(this, objectId);
    });
  }

  /**
   * Ends every lease of this connection (views detach, mappings go; the
   * daemon releases them and discards unsealed objects) and disconnects.
   * Idempotent.
   */
  close(): Promise<void> {
    this.#shutdown("Connection closed", false);
    this.#closing ??= Promise.all([this.#channel.close(), this.#puts.close()]).then(() => {});
    return this.#closing;
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #fail(reason: string): void {
    this.#shutdown(`Connection to ${this.#path} failed: ${reason}`);
    void this.#channel.close();
  }

  /** Ends the connection; `lost` when it went down under its leases rather than being closed. */
  #shutdown(reason: string, lost = true): void {
    if (this.#requests.closedReason !== undefined) return;
    this.#requests.close(reason);
    this.#leases.endAll(lost ? `${reason} (did the daemon restart?)` : undefined);
    this.#mappings.close();
  }
}

/** The lease an OPEN grants, as `acquire` hands it out. */
function asAcquired(acquired: Acquired): Acquired {
  return acquired;
}

function ignore(): void {}
