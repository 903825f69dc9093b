/**
 * WRITE leases of a cluster peer: on objects of its own peer, and on objects
 * it does not hold (held elsewhere, or only as a copy here), whose only use
 * is a cluster-wide delete.
 *
 * @module
 */
import { Access, type Lease } from "../core/lease.ts";
import { NotFoundError } from "../core/errors.ts";
import type { ObjectInfo } from "../core/object.ts";
import type { Acquired, AcquireOptions, Peer } from "../core/peer.ts";
import type { Directory } from "./directory.ts";
import type { FetchedCopies } from "./fetched_copies.ts";

/** The WRITE leases a cluster peer granted, by lease id, with their object ids. */
export class WriteLeases {
  readonly #home: Peer;
  readonly #directory: Directory;
  readonly #copies: FetchedCopies;
  /** WRITE leases of `home`: their discard is a cluster-wide delete. */
  readonly #local = new Map<string, string>();
  /** WRITE leases on objects `home` does not hold: only a discard is possible. */
  readonly #remote = new Map<string, string>();

  /** Grants WRITE leases on `home`'s objects, the copies' and those of the directory. */
  constructor(home: Peer, directory: Directory, copies: FetchedCopies) {
    this.#home = home;
    this.#directory = directory;
    this.#copies = copies;
  }

  /**
   * A WRITE lease on `id`: from `home` when it holds the object, else one of
   * this peer's own on an object held elsewhere or only as a copy here.
   *
   * @throws {NotFoundError} When no one holds it.
   */
  async acquire(id: string, options: AcquireOptions): Promise<Acquired> {
    let info: ObjectInfo | undefined;
    try {
      const acquired = await this.#home.acquire(id, Access.WRITE, options);
      this.#local.set(acquired.lease.id, id);
      return acquired;
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      // Held elsewhere, or only as a copy here: a WRITE lease allows its delete.
      info = await this.#home.stat(id).catch(() => undefined);
      const entry = info === undefined && !this.#copies.has(id)
        ? await this.#directory.lookup(id)
        : undefined;
      if (info === undefined && entry !== undefined) {
        info = {
          id,
          state: "SEALED",
          size: entry.size,
          blobSizes: [entry.size],
          meta: {},
          createdAt: 0,
          digest: entry.digest,
        };
      }
      info ??= this.#copies.has(id) ? await this.#copies.peer.stat(id) : undefined;
      if (info === undefined) throw error;
    }
    const ttl = options.ttl;
    const lease: Lease = {
      id: `cluster-${crypto.randomUUID()}`,
      objectId: id,
      access: Access.WRITE,
      ...(ttl === undefined ? {} : { ttl, expiresAt: Date.now() + ttl }),
    };
    this.#remote.set(lease.id, id);
    return { lease, object: info, blobs: [] };
  }

  /** Ends a lease on an object held elsewhere, returning its object id; undefined for others. */
  takeRemote(leaseId: string): string | undefined {
    const id = this.#remote.get(leaseId);
    this.#remote.delete(leaseId);
    return id;
  }

  /** Ends a lease of `home` this peer granted, returning its object id; undefined for others. */
  takeLocal(leaseId: string): string | undefined {
    const id = this.#local.get(leaseId);
    if (id !== undefined) this.#local.delete(leaseId);
    return id;
  }

  /** A lease on an object held elsewhere, extended by `ttl`; undefined for others. */
  renewRemote(leaseId: string, ttl?: number): Lease | undefined {
    const id = this.#remote.get(leaseId);
    if (id === undefined) return undefined;
    return {
      id: leaseId,
      objectId: id,
      access: Access.WRITE,
      ...(ttl === undefined ? {} : { ttl, expiresAt: Date.now() + ttl }),
    };
  }
}
