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
} from "../core/peer.ts";
import { ClosedError, LeaseExpiredError, UnknownLeaseError } from "../core/errors.ts";
import { Access, type Lease } from "../core/lease.ts";
import { listInPages, type ListPage, listPageOf, type ListPageOptions } from "../core/list_page.ts";
import type { ObjectInfo } from "../core/object.ts";
import type { DaemonStatus, StatusSource } from "../core/status.ts";
import type { OriginReply, OriginRequest, OriginSource } from "../transport/origin_fetch.ts";
import type { UdsPeer } from "../transport/uds/uds_peer.ts";
import type { ReadRetry } from "../transport/uds/client_open.ts";

/**
 * A daemon's peer over a Unix socket that outlives the daemon's restarts: a
 * call after the connection was lost connects again, and a call that only
 * reads and fails because the connection went down under it is tried once
 * more on a new one. Leases do not survive: one granted before the loss ends
 * with {@link LeaseExpiredError}, its views detached.
 */
export class ReconnectingPeer
  implements
    Peer,
    DirectPut,
    IdPut,
    DirectDelete,
    DirectRead,
    StatusSource,
    OriginSource,
    ArrivingRead {
  readonly #connect: () => Promise<UdsPeer>;
  #current: UdsPeer;
  #reconnecting: Promise<UdsPeer> | undefined;
  /** Leases that write (CREATE, WRITE), by the connection that granted them. */
  readonly #writers = new Map<string, UdsPeer>();
  /** Connections lost so far. */
  #lost = 0;
  #closing: Promise<void> | undefined;
  /** Tries a read that failed once more on a new connection, when its own went down under it. */
  readonly #retryRead: ReadRetry = (error, objectId, options, make, from) => {
    if (!this.#retries(error, from as UdsPeer)) return undefined;
    return Promise.resolve(this.#peer()).then((peer) => peer.acquireRead(objectId, options, make));
  };

  /**
   * @param first The connected peer.
   * @param connect Connects again, to the same socket.
   */
  constructor(first: UdsPeer, connect: () => Promise<UdsPeer>) {
    this.#current = first;
    this.#connect = connect;
  }

  /** The socket path. */
  get path(): string {
    return this.#current.path;
  }

  async acquire(
    objectId: string | undefined,
    access: Access,
    options?: AcquireOptions,
  ): Promise<Acquired> {
    if (access === Access.READ) {
      return await this.#read((peer) => peer.acquire(objectId, access, options));
    }
    const peer = await this.#peer();
    const acquired = await peer.acquire(objectId, access, options);
    this.#writers.set(acquired.lease.id, peer);
    return acquired;
  }

  /**
   * See `UdsPeer.acquireRead`; tried once more on a new connection, as
   * other reads are, when the connection goes down under it.
   */
  acquireRead<T>(
    objectId: string,
    options: AcquireOptions,
    make: (acquired: Acquired) => T | Promise<T>,
  ): Promise<T> {
    const current = this.#current;
    if (current.closed || this.#closing !== undefined) {
      return this.#read((peer) => peer.acquireRead(objectId, options, make));
    }
    return current.acquireRead(objectId, options, make, this.#retryRead);
  }

  seal(leaseId: string): Promise<ObjectInfo> {
    return this.#onLease(leaseId, (peer) => peer.seal(leaseId), true);
  }

  discard(leaseId: string): Promise<void> {
    return this.#onLease(leaseId, (peer) => peer.discard(leaseId), true);
  }

  release(leaseId: string): Promise<void> {
    return this.#onLease(leaseId, (peer) => peer.release(leaseId), true);
  }

  /** See `UdsPeer.releaseQuietly`: a lease of a lost connection has ended with it. */
  releaseQuietly(acquired: Acquired): void {
    // READ leases are never writers': a get's lease costs no lookup by its new id.
    const lease = acquired.lease;
    const owner = lease.access === Access.READ ? undefined : this.#writers.get(lease.id);
    if (owner !== undefined) this.#writers.delete(lease.id);
    (owner ?? this.#current).releaseQuietly(acquired);
  }

  renew(leaseId: string, ttl?: number): Promise<Lease> {
    return this.#onLease(leaseId, (peer) => peer.renew(leaseId, ttl), false);
  }

  /** See `UdsPeer.readArriving`; a stream does not outlive its connection. */
  readArriving(objectId: string): Promise<ArrivingObject | undefined> {
    return this.#read((peer) => peer.readArriving(objectId));
  }

  stat(objectId: string): Promise<ObjectInfo> {
    return this.#read((peer) => peer.stat(objectId));
  }

  list(): Promise<ObjectInfo[]> {
    return listInPages(this);
  }

  listPage(options?: ListPageOptions): Promise<ListPage> {
    return this.#read((peer) => listPageOf(peer, options));
  }

  has(objectId: string): Promise<boolean> {
    return this.#read((peer) => peer.has(objectId));
  }

  stats(): Promise<PeerStats> {
    return this.#read((peer) => peer.stats());
  }

  status(): Promise<DaemonStatus> {
    return this.#read((peer) => peer.status());
  }

  /** Reads a URL through the daemon (see `UdsPeer.fetchOrigin`). */
  fetchOrigin(request: OriginRequest): Promise<OriginReply> {
    return this.#read((peer) => peer.fetchOrigin(request));
  }

  metrics(): Promise<Readonly<Record<string, number>>> {
    return this.#read((peer: Peer) => peer.metrics?.() ?? Promise.resolve({}));
  }

  putObject(
    chunks: readonly Uint8Array[],
    size: number,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    const peer = this.#peer();
    return peer instanceof Promise
      ? peer.then((connected) => connected.putObject(chunks, size, options))
      : peer.putObject(chunks, size, options);
  }

  putId(bytes: Uint8Array, options: PutOptions): Promise<string> {
    const peer = this.#peer();
    return peer instanceof Promise
      ? peer.then((connected) => connected.putId(bytes, options))
      : peer.putId(bytes, options);
  }

  deleteObject(objectId: string): Promise<void> {
    const peer = this.#peer();
    return peer instanceof Promise
      ? peer.then((connected) => connected.deleteObject(objectId))
      : peer.deleteObject(objectId);
  }

  /** Closes the connection; no other is made. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#reconnecting?.catch(() => {});
      await this.#current.close();
    })();
    return this.#closing;
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The connected peer, connecting again when the last connection was lost. */
  #peer(): UdsPeer | Promise<UdsPeer> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError("Peer is closed"));
    if (!this.#current.closed) return this.#current;
    this.#reconnecting ??= (async () => {
      const lost = this.#current;
      try {
        const peer = await this.#connect();
        this.#lost++;
        this.#current = peer;
        for (const [lease, owner] of this.#writers) if (owner === lost) this.#writers.delete(lease);
        void lost.close();
        return peer;
      } finally {
        this.#reconnecting = undefined;
      }
    })();
    return this.#reconnecting;
  }

  /** A call that changes nothing: tried once more when the connection is lost under it. */
  #read<T>(call: (peer: UdsPeer) => Promise<T>): Promise<T> {
    const current = this.#current;
    // The common case costs no extra turn: a live connection and a call that succeeds.
    const first = !current.closed && this.#closing === undefined
      ? call(current)
      : Promise.resolve(this.#peer()).then(call);
    return first.catch(async (error) => {
      if (!this.#retries(error, current)) throw error;
      return await call(await this.#peer());
    });
  }

  /** Whether a read that failed with `error` on `current` is tried again: the connection went down. */
  #retries(error: unknown, current: UdsPeer): boolean {
    if (!(error instanceof ClosedError) || this.#closing !== undefined) return false;
    return this.#current !== current || current.closed;
  }

  /** A call on a lease, on the connection that granted it. */
  #onLease<T>(leaseId: string, call: (peer: UdsPeer) => Promise<T>, ends: boolean): Promise<T> {
    const owner = this.#writers.get(leaseId);
    if (ends && owner !== undefined) this.#writers.delete(leaseId);
    const peer = owner ?? this.#current;
    return call(peer).catch((error) => {
      const lost = peer.closed && this.#closing === undefined;
      if (lost || (this.#lost > 0 && owner === undefined && error instanceof UnknownLeaseError)) {
        throw new LeaseExpiredError(
          `Lease ${leaseId} ended: the connection to the daemon at ${peer.path} was lost (did it restart?)`,
          { cause: error },
        );
      }
      throw error;
    });
  }
}
