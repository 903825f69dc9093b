/**
 * A daemon's peer in a cluster: its own peer, plus fetch on miss from the
 * other daemons through the object directory.
 *
 * @module
 */
import { Access, type Lease } from "../core/lease.ts";
import {
  ConflictError,
  NotFoundError,
  StoreUnavailableError,
  UnsupportedError,
} from "../core/errors.ts";
import type { ObjectInfo } from "../core/object.ts";
import type { Acquired, AcquireOptions, Peer, PeerStats } from "../core/peer.ts";
import { putInSteps } from "../core/put_in_steps.ts";
import { type Meta, validateObjectId } from "../core/validate.ts";
import { contentRecord } from "./content.ts";
import { type ClusterCounts, clusterCounts } from "./cluster_metrics.ts";
import type { ContentRecord, Directory, Holder, Removal } from "./directory.ts";
import type { ClusterLog, ClusterPeerOptions } from "./cluster_options.ts";
import { Blocklist } from "./swarm/blocklist.ts";
import { Fetcher } from "./fetcher.ts";
import { TokenBucket } from "../transport/rate_limit.ts";
import { TransferBudget } from "./swarm/transfer_budget.ts";
import type { AssembleFill, PartialBytes } from "./origin/origin_store.ts";
import { PutClaims } from "./put_claims.ts";

/** The one-call put the transports use when a peer offers it (see `BasePeer.putObject`). */
type PutObject = (
  chunks: readonly Uint8Array[],
  size: number,
  options?: { id?: string; meta?: Meta; ttl?: number; transfer?: boolean },
) => Promise<ObjectInfo>;

const quiet: ClusterLog = { warn: () => {}, debug: () => {} };

/**
 * A {@link Peer} that answers a READ of an object it does not hold by fetching
 * it from a daemon that does: holders from the {@link Directory}, bytes over
 * HTTP (`GET /v1/objects/:id?local=1` with a `Range` per piece, the cluster
 * token as bearer) straight into a local CREATE blob, each piece and the whole
 * checked against the digests recorded at seal, then sealed, announced, and
 * handed out like any local object (zero-copy to a Unix socket client).
 *
 * - Every object sealed here gets its content record (SHA-256 of the whole
 *   and of each piece) before its seal returns, and is announced.
 * - Concurrent reads of one missing id start one fetch.
 * - A holder that is unreachable, answers wrongly, stalls or sends bytes that
 *   do not verify is skipped (and withdrawn when unreachable); no holder left
 *   gives `NotFoundError`. Nothing unverified is sealed.
 * - `acquire(id, READ, { local: true })` never fetches.
 * - A fetched copy is checked against the directory on each read, so an
 *   object deleted (and maybe put again with other bytes) is never served
 *   from an old copy; `delete` anywhere removes the object cluster-wide.
 *
 * @example Wrap a daemon's peer
 * ```ts ignore
 * import { ClusterPeer, MemoryPeer } from "@packice/packice";
 * const peer = new ClusterPeer({
 *   home: new MemoryPeer(),
 *   replicas: new MemoryPeer(),
 *   directory, // a Directory, such as RedisDirectory
 *   node: "node-1",
 *   address: "http://10.0.0.1:7070",
 *   token: Deno.env.get("PACKICE_TOKEN"),
 * });
 * ```
 */
export class ClusterPeer implements Peer {
  readonly #home: Peer;
  readonly #replicas: Peer;
  readonly #directory: Directory;
  readonly #node: string;
  readonly #token: string | undefined;
  #address: string | undefined;
  readonly #removeShared: ((objectId: string) => Promise<void>) | undefined;
  readonly #fetcher: Fetcher;
  readonly #log: ClusterLog;
  readonly #counts: ClusterCounts = clusterCounts();
  /** Fetched copies held in `replicas`, by id, with their content digest. */
  readonly #copies = new Map<string, string>();
  /** The content digest of objects sealed in `home`, by id. */
  readonly #sealed = new Map<string, string>();
  /** Leases granted by `replicas`. */
  readonly #replicaLeases = new Set<string>();
  /** WRITE leases of `home`, by lease id: their discard is a cluster-wide delete. */
  readonly #homeWrites = new Map<string, string>();
  /** WRITE leases on objects this daemon does not hold, by lease id: only a discard is possible. */
  readonly #remoteWrites = new Map<string, string>();
  /** Copies being dropped, by id: a new copy of the id waits for its predecessor to go. */
  readonly #dropping = new Map<string, Promise<void>>();
  /** Fetches under way, by id. */
  readonly #fetching = new Map<string, Promise<void>>();
  /** Objects being assembled here (see `assemble`), by id: their verified bytes are relayed. */
  readonly #assembling = new Map<string, PartialBytes>();
  /** Assembled copies sealed here and not announced yet: served before the directory lists them. */
  readonly #announcing = new Set<string>();
  /** Claims of creates under a given id (without a shared lease store), by lease id. */
  readonly #putClaims: PutClaims | undefined;
  readonly #claimed = new Map<string, () => Promise<void>>();
  /** Announces and digests under way, awaited by close(). */
  readonly #background = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  readonly #unsubscribe: (() => void) | undefined;
  #closed: Promise<void> | undefined;

  /**
   * Creates the peer; it owns `home`, `replicas` and `directory` and closes them.
   *
   * @param options The peers, the directory and this daemon's place in the cluster.
   */
  constructor(options: ClusterPeerOptions) {
    this.#home = options.home;
    this.#replicas = options.replicas;
    this.#directory = options.directory;
    this.#node = options.node;
    this.#token = options.token;
    this.#address = options.address;
    this.#removeShared = options.removeShared;
    this.#log = options.log ?? quiet;
    this.#fetcher = new Fetcher({
      replicas: options.replicas,
      directory: options.directory,
      members: options.members,
      node: options.node,
      token: options.token,
      maxObjectSize: options.maxObjectSize ?? Number.MAX_SAFE_INTEGER,
      transfer: {
        ...options.transfer,
        rate: options.maxDownloadRate === undefined
          ? undefined
          : new TokenBucket(options.maxDownloadRate),
      },
      blocklist: new Blocklist(options.blockMs ?? 30_000),
      budget: options.transferBudget === undefined
        ? undefined
        : new TransferBudget(options.transferBudget),
      log: this.#log,
      address: () => this.#address,
      counts: this.#counts,
      signal: this.#abort.signal,
      later: (work) => this.#later(work),
    });
    this.#unsubscribe = options.directory.onRemove?.((removal) => this.#removed(removal));
    this.#putClaims = options.removeShared === undefined
      ? new PutClaims(options.directory, () => this.#holder())
      : undefined;
  }

  /**
   * This daemon's HTTP base URL as other daemons reach it; set it once the
   * HTTP server listens (its real port when bound to port 0).
   */
  get address(): string | undefined {
    return this.#address;
  }

  set address(url: string | undefined) {
    this.#address = url;
  }

  /**
   * Bytes of an object still on its way here, as a partial holder serves
   * them: `read` copies a byte range whose pieces are all verified.
   *
   * @returns Undefined when no fetch of `objectId` is under way.
   */
  partial(
    objectId: string,
  ): { size: number; read(start: number, end: number): Uint8Array | undefined } | undefined {
    return this.#fetcher.partial(objectId) ?? this.#assembling.get(objectId);
  }

  /**
   * Builds a copy of `id` from bytes this daemon gathers itself (an origin
   * download, or pieces relayed during one): `fill` writes and verifies the
   * view of a CREATE blob of `size` bytes among the fetched copies, and may
   * `relay` its verified bytes to other daemons meanwhile; the copy is then
   * sealed with the record `fill` returns and announced, replacing other
   * content recorded under `id` (an older version of the same origin URL).
   * Nothing is sealed when `fill` throws.
   */
  async assemble(
    id: string,
    size: number,
    meta: Meta,
    fill: AssembleFill,
  ): Promise<ContentRecord> {
    await this.#dropping.get(id)?.catch(() => {});
    const old = this.#copies.get(id);
    if (old !== undefined) await this.#dropCopy(id, old);
    const { lease, blobs } = await this.#replicas.acquire(id, Access.CREATE, { size, meta });
    let sealed = false;
    try {
      const view = size === 0 ? new Uint8Array(0) : blobs[0]!.openView();
      if (view === undefined) throw new UnsupportedError("Cannot assemble in blobs without a view");
      const record = await fill(view, (partial) => this.#assembling.set(id, partial));
      this.#assembling.delete(id);
      if (size > 0) blobs[0]!.closeView(view);
      await this.#replicas.seal(lease.id);
      sealed = true;
      await this.#replicas.recordDigest?.(lease.id, record.digest);
      this.#copies.set(id, record.digest);
      if (this.#address !== undefined) {
        const holder = { node: this.#node, address: this.#address };
        this.#announcing.add(id);
        await this.#directory.announce(record, holder).catch(async (error) => {
          if (!(error instanceof ConflictError)) throw error;
          // A newer version of the same source: the old one goes everywhere.
          await this.#directory.remove(id);
          await this.#directory.announce(record, holder);
        }).finally(() => this.#announcing.delete(id));
      }
      return record;
    } finally {
      this.#assembling.delete(id);
      await (sealed ? this.#replicas.release(lease.id) : this.#replicas.discard(lease.id))
        .catch(() => {});
    }
  }

  /** What this peer counted: local hits, fetches, misses, verification failures. */
  get counts(): Readonly<ClusterCounts> {
    return this.#counts;
  }

  async acquire(
    objectId: string | undefined,
    access: Access,
    options: AcquireOptions = {},
  ): Promise<Acquired> {
    if (objectId !== undefined) {
      if (access === Access.READ) return await this.#read(objectId, options);
      if (access === Access.WRITE) return await this.#write(objectId, options);
      if (access === Access.CREATE && this.#putClaims !== undefined) {
        // One id, one content: a create of an id claimed or held elsewhere is refused.
        const release = await this.#putClaims.claim(validateObjectId(objectId));
        try {
          const created = await this.#home.acquire(objectId, access, options);
          this.#claimed.set(created.lease.id, release);
          return created;
        } catch (error) {
          await release();
          throw error;
        }
      }
    }
    return await this.#home.acquire(objectId, access, options);
  }

  async seal(leaseId: string): Promise<ObjectInfo> {
    try {
      const info = await this.#home.seal(leaseId);
      await this.#announceSealed(info.id);
      return info;
    } finally {
      if (this.#claimed.size > 0) this.#later(this.#unclaim(leaseId));
    }
  }

  /** Stores a sealed object in one step, as `BasePeer.putObject`, and announces it. */
  async putObject(
    chunks: readonly Uint8Array[],
    size: number,
    options: { id?: string; meta?: Meta; ttl?: number; transfer?: boolean } = {},
  ): Promise<ObjectInfo> {
    const put = (this.#home as Peer & { putObject?: PutObject }).putObject;
    // Bad options are the home peer's to refuse, with its typed error.
    const id = (options as { id?: unknown } | null)?.id;
    const release = typeof id === "string" && this.#putClaims !== undefined
      ? await this.#putClaims.claim(validateObjectId(id))
      : undefined;
    try {
      const info = await this.#putHome(put, chunks, size, options);
      await this.#announceSealed(info.id);
      return info;
    } finally {
      if (release !== undefined) this.#later(release());
    }
  }

  async #putHome(
    put: PutObject | undefined,
    chunks: readonly Uint8Array[],
    size: number,
    options: { id?: string; meta?: Meta; ttl?: number; transfer?: boolean },
  ): Promise<ObjectInfo> {
    if (put !== undefined) return await put.call(this.#home, chunks, size, options);
    return await putInSteps(this.#home, options.id, chunks, {
      size,
      ...(options.meta === undefined ? {} : { meta: options.meta }),
      ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
    });
  }

  async discard(leaseId: string): Promise<void> {
    const remote = this.#remoteWrites.get(leaseId);
    if (remote !== undefined) {
      this.#remoteWrites.delete(leaseId);
      await this.#removeShared?.(remote);
      await this.#removeEverywhere(remote);
      return;
    }
    if (this.#replicaLeases.has(leaseId)) {
      this.#replicaLeases.delete(leaseId);
      return await this.#replicas.discard(leaseId);
    }
    if (this.#claimed.size > 0) this.#later(this.#unclaim(leaseId));
    await this.#home.discard(leaseId);
    const deleted = this.#homeWrites.get(leaseId);
    if (deleted !== undefined) {
      this.#homeWrites.delete(leaseId);
      this.#sealed.delete(deleted);
      await this.#removeEverywhere(deleted);
    }
  }

  release(leaseId: string): Promise<void> {
    if (this.#replicaLeases.delete(leaseId)) return this.#replicas.release(leaseId);
    if (this.#remoteWrites.delete(leaseId)) return Promise.resolve();
    if (this.#homeWrites.size > 0) this.#homeWrites.delete(leaseId);
    if (this.#claimed.size > 0) this.#later(this.#unclaim(leaseId));
    return this.#home.release(leaseId);
  }

  renew(leaseId: string, ttl?: number): Promise<Lease> {
    const remote = this.#remoteWrites.get(leaseId);
    if (remote !== undefined) {
      return Promise.resolve({
        id: leaseId,
        objectId: remote,
        access: Access.WRITE,
        ...(ttl === undefined ? {} : { ttl, expiresAt: Date.now() + ttl }),
      });
    }
    return this.#peerOf(leaseId).renew(leaseId, ttl);
  }

  async stat(objectId: string): Promise<ObjectInfo> {
    try {
      return await this.#home.stat(objectId);
    } catch (error) {
      if (!(error instanceof NotFoundError) || !this.#copies.has(objectId)) throw error;
      return await this.#replicas.stat(objectId);
    }
  }

  async list(): Promise<ObjectInfo[]> {
    const listed = await this.#home.list();
    const ids = new Set(listed.map((info) => info.id));
    for (const info of await this.#replicas.list()) if (!ids.has(info.id)) listed.push(info);
    return listed;
  }

  async has(objectId: string): Promise<boolean> {
    return this.#copies.has(objectId) || await this.#home.has(objectId);
  }

  async stats(): Promise<PeerStats> {
    const [home, replicas] = await Promise.all([this.#home.stats(), this.#replicas.stats()]);
    return {
      ...home,
      leases: home.leases + replicas.leases,
      bytes: home.bytes + replicas.bytes,
      capacity: home.capacity + replicas.capacity,
    };
  }

  recordDigest(leaseId: string, digest: string): Promise<void> {
    const peer = this.#peerOf(leaseId);
    return peer.recordDigest?.(leaseId, digest) ?? Promise.resolve();
  }

  async metrics(): Promise<Readonly<Record<string, number>>> {
    return { ...await this.#home.metrics?.(), ...this.#counts };
  }

  /**
   * Stops fetches under way (their unfinished objects are discarded),
   * withdraws this daemon from the directory entries of what it held (a
   * clean shutdown leaves), then closes both peers and the directory.
   * Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#abort.abort(new NotFoundError("Peer is closing"));
      this.#unsubscribe?.();
      await Promise.allSettled([...this.#claimed.keys()].map((lease) => this.#unclaim(lease)));
      await Promise.allSettled([...this.#fetching.values(), ...this.#background]);
      if (this.#address !== undefined) {
        const held = new Set([...this.#sealed.keys(), ...this.#copies.keys()]);
        await Promise.allSettled([...held].map((id) => this.#directory.withdraw(id, this.#node)));
      }
      await this.#replicas.close();
      await this.#home.close();
      await this.#directory.close();
    })();
    return this.#closed;
  }

  /** Same as {@link ClusterPeer.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** This daemon as others reach it, once its address is known. */
  #holder(): Holder | undefined {
    return this.#address === undefined ? undefined : { node: this.#node, address: this.#address };
  }

  /** Lets go of the claim of a create's lease, if it took one. */
  async #unclaim(leaseId: string): Promise<void> {
    const release = this.#claimed.get(leaseId);
    if (release === undefined) return;
    this.#claimed.delete(leaseId);
    await release();
  }

  #peerOf(leaseId: string): Peer {
    return this.#replicaLeases.has(leaseId) ? this.#replicas : this.#home;
  }

  async #read(id: string, options: AcquireOptions): Promise<Acquired> {
    const copy = this.#copies.get(id);
    if (copy !== undefined) {
      const acquired = await this.#readCopy(id, copy, options, true);
      if (acquired !== undefined) return acquired;
    }
    if (options.local === true && this.#fetching.has(id)) {
      // On its way here (its verified pieces are served as they are): no lease to ask for.
      throw new StoreUnavailableError(`Cannot read object ${id} yet: on its way here`);
    }
    try {
      const acquired = await this.#home.acquire(id, Access.READ, options);
      if (this.#holds(acquired.object)) {
        this.#counts.cluster_local_hits_total++;
        return acquired;
      }
      // A shared lease store granted another incarnation of the id (deleted
      // elsewhere, then put again) than the bytes held here: those go.
      await this.#home.release(acquired.lease.id).catch(() => {});
      this.#forgetSealed(id);
      throw new NotFoundError(`No object: ${id} (the copy here was replaced)`);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      if (options.local === true) {
        // On its way here: busy, not missing, so that a daemon asking for a
        // piece (its HTTP server serves those it has) does not withdraw it.
        if (this.#fetching.has(id) || this.#assembling.has(id)) {
          throw new StoreUnavailableError(`Cannot read object ${id} yet: on its way here`);
        }
        // Sealed here while the lease store was asked: the copy, not a miss.
        const arrived = this.#copies.get(id);
        const acquired = arrived === undefined
          ? undefined
          : await this.#readCopy(id, arrived, options, true);
        if (acquired !== undefined) return acquired;
        throw error;
      }
      let flight = this.#fetching.get(id);
      if (flight === undefined) {
        flight = this.#fetch(id, error).finally(() => this.#fetching.delete(id));
        this.#fetching.set(id, flight);
      }
      await flight;
    }
    const fetched = this.#copies.get(id);
    const acquired = fetched === undefined
      ? undefined
      : await this.#readCopy(id, fetched, options, false);
    if (acquired === undefined) throw new NotFoundError(`No object: ${id}`);
    return acquired;
  }

  /**
   * A READ lease on the fetched copy of `id`; undefined, with the copy
   * dropped, when the directory no longer lists its content.
   */
  async #readCopy(
    id: string,
    digest: string,
    options: AcquireOptions,
    check: boolean,
  ): Promise<Acquired | undefined> {
    let acquired: Acquired;
    try {
      acquired = await this.#replicas.acquire(id, Access.READ, options);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      if (this.#copies.get(id) === digest) this.#copies.delete(id);
      return undefined;
    }
    if (check) {
      let current: string | undefined;
      try {
        current = (await this.#directory.lookup(id))?.digest;
      } catch (error) {
        // The directory is away: the copy is served as it stands.
        if (!(error instanceof StoreUnavailableError)) {
          await this.#replicas.release(acquired.lease.id).catch(() => {});
          throw error;
        }
        current = digest;
      }
      if (current !== digest && !this.#announcing.has(id)) {
        await this.#replicas.release(acquired.lease.id).catch(() => {});
        await this.#dropCopy(id, digest);
        return undefined;
      }
      this.#counts.cluster_local_hits_total++;
    }
    this.#replicaLeases.add(acquired.lease.id);
    return acquired;
  }

  async #write(id: string, options: AcquireOptions): Promise<Acquired> {
    let info: ObjectInfo | undefined;
    try {
      const acquired = await this.#home.acquire(id, Access.WRITE, options);
      this.#homeWrites.set(acquired.lease.id, id);
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
      info ??= this.#copies.has(id) ? await this.#replicas.stat(id) : undefined;
      if (info === undefined) throw error;
    }
    const ttl = options.ttl;
    const lease: Lease = {
      id: `cluster-${crypto.randomUUID()}`,
      objectId: id,
      access: Access.WRITE,
      ...(ttl === undefined ? {} : { ttl, expiresAt: Date.now() + ttl }),
    };
    this.#remoteWrites.set(lease.id, id);
    return { lease, object: info, blobs: [] };
  }

  /** Forgets `id` in the directory, which tells every holder, and drops the copy here. */
  async #removeEverywhere(id: string): Promise<void> {
    await this.#directory.remove(id);
    const copy = this.#copies.get(id);
    if (copy !== undefined) await this.#dropCopy(id, copy);
  }

  /**
   * Whether the object a home lease was granted on is the incarnation whose
   * bytes are here: a shared lease store lists the holders of each.
   */
  #holds(object: ObjectInfo): boolean {
    const holders = object.holders;
    if (holders === undefined) return true;
    for (const holder of holders) if (holder.node === this.#node) return true;
    return false;
  }

  /** A removal for this node: drops the copy or home object of exactly that content. */
  #removed({ id, digest }: Removal): void {
    if (this.#copies.get(id) === digest) this.#later(this.#dropCopy(id, digest));
    if (this.#sealed.get(id) === digest) this.#forgetSealed(id);
  }

  /** Drops the bytes of an object sealed here whose record is gone. */
  #forgetSealed(id: string): void {
    this.#sealed.delete(id);
    if (this.#removeShared === undefined) {
      // The lease store is this daemon's own: the object leaves through it.
      this.#later(this.#discardHome(id));
      return;
    }
    const home = this.#home as Peer & { forget?: (objectId: string) => boolean };
    if (home.forget?.(id) === true) this.#counts.cluster_dropped_total++;
  }

  /** Deletes an object of `home` (readers keep its bytes until they release). */
  async #discardHome(id: string): Promise<void> {
    try {
      const { lease } = await this.#home.acquire(id, Access.WRITE);
      await this.#home.discard(lease.id);
      this.#counts.cluster_dropped_total++;
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
  }

  /** Removes a fetched copy; readers keep its bytes until they release. */
  async #dropCopy(id: string, digest: string): Promise<void> {
    if (this.#copies.get(id) !== digest) return;
    this.#copies.delete(id);
    this.#counts.cluster_dropped_total++;
    const dropping = (async () => {
      try {
        const { lease } = await this.#replicas.acquire(id, Access.WRITE);
        await this.#replicas.discard(lease.id);
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    })().finally(() => this.#dropping.delete(id));
    this.#dropping.set(id, dropping);
    await dropping;
  }

  /**
   * Computes the content record of an object just sealed here, records its
   * digest, announces it. The seal stands whatever happens here (the object
   * deleted at once, the directory away): a failure is reported, and the
   * object is then served by this daemon only.
   */
  async #announceSealed(id: string): Promise<void> {
    try {
      await this.#recordAndAnnounce(id);
    } catch (error) {
      this.#log.warn(`Cannot record or announce object ${id}: ${(error as Error).message}`);
    }
  }

  async #recordAndAnnounce(id: string): Promise<void> {
    const copy = this.#copies.get(id);
    if (copy !== undefined) await this.#dropCopy(id, copy);
    const { lease, blobs } = await this.#home.acquire(id, Access.READ, { local: true });
    let record: ContentRecord;
    try {
      record = await contentRecord(id, blobs, this.#token);
    } catch (error) {
      await this.#home.release(lease.id).catch(() => {});
      throw error;
    }
    this.#sealed.set(id, record.digest);
    // The digest goes to the lease store while the directory hears of the holder.
    const recorded = (async () => {
      try {
        await this.#home.recordDigest?.(lease.id, record.digest);
      } finally {
        await this.#home.release(lease.id).catch(() => {});
      }
    })();
    await Promise.all([recorded, this.#announce(record)]);
  }

  /** Announces this daemon as holder of `record`, an object sealed here. */
  async #announce(record: ContentRecord): Promise<void> {
    if (this.#address === undefined) return;
    const holder: Holder = { node: this.#node, address: this.#address };
    try {
      await this.#directory.announce(record, holder);
    } catch (error) {
      if (!(error instanceof ConflictError) || this.#removeShared === undefined) {
        this.#log.warn(`Cannot announce object ${record.id}: ${(error as Error).message}`);
        return;
      }
      // The shared lease store let this seal through: the other entry is stale.
      await this.#directory.remove(record.id);
      await this.#directory.announce(record, holder);
    }
  }

  /** Fetches `id` from its holders into a copy in `replicas`, or throws `NotFoundError`. */
  async #fetch(id: string, notFound: NotFoundError): Promise<void> {
    const started = performance.now();
    const record = await this.#fetcher.fetch(id, notFound, {
      before: async () => await this.#dropping.get(id)?.catch(() => {}),
      sealed: (record) => void this.#copies.set(id, record.digest),
    });
    const seconds = (performance.now() - started) / 1000;
    this.#counts.cluster_fetches_total++;
    this.#counts.cluster_fetch_seconds_total += seconds;
    this.#log.debug(`Fetched object ${id} (${record.size} bytes) in ${seconds.toFixed(3)} s`);
    if (this.#address === undefined) return;
    try {
      await this.#directory.announce(record, { node: this.#node, address: this.#address }, {
        existing: true,
      });
    } catch (error) {
      if (error instanceof NotFoundError || error instanceof ConflictError) {
        // Removed, or replaced, while it was on its way: the copy goes.
        await this.#dropCopy(id, record.digest);
        throw new NotFoundError(`No object: ${id} (removed while it was fetched)`);
      }
      this.#log.warn(`Cannot announce the copy of object ${id}: ${(error as Error).message}`);
    }
  }

  #later(work: Promise<void>): void {
    const done = work.catch((error) => this.#log.warn(String(error))).finally(() =>
      this.#background.delete(done)
    );
    this.#background.add(done);
  }
}
