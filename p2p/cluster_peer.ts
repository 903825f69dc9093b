/**
 * A daemon's peer in a cluster: its own peer, plus fetch on miss from the
 * other daemons through the object directory. One idea, the routing of each
 * `Peer` call between the daemon's own objects and its fetched copies; what
 * it routes to lives apart (`fetches.ts`, `fetched_copies.ts`,
 * `sealed_here.ts`, `write_leases.ts`, `arrival.ts`, `assembly.ts`,
 * `create_claims.ts`), hence its length.
 *
 * @module
 */
import { Access, type Lease } from "../core/lease.ts";
import { NotFoundError, StoreUnavailableError, UnsupportedError } from "../core/errors.ts";
import {
  formatCursor,
  type ListPage,
  listPageOf,
  type ListPageOptions,
  listPageRequest,
} from "../core/list_page.ts";
import type { ObjectInfo } from "../core/object.ts";
import {
  type Acquired,
  type AcquireOptions,
  type ArrivingObject,
  type ArrivingRead,
  type BesideReads,
  type LocalStat,
  offersReadsBeside,
  offersRemovalEvents,
  type Peer,
  type PeerStats,
  type ReadsBeside,
  type RemovalEvents,
} from "../core/peer.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import { putInSteps } from "../core/put_in_steps.ts";
import type { Meta } from "../core/validate.ts";
import type { ContentRecord, Holder } from "./directory.ts";
import type { AssembleFill } from "./origin/origin_store.ts";
import { Assembly } from "./assembly.ts";
import { CreateClaims } from "./create_claims.ts";
import { type ClusterCounts, clusterCounts } from "./cluster_metrics.ts";
import type { Directory, Removal } from "./directory.ts";
import type { HeldContent, HoldingSource } from "./directory/holding.ts";
import type { ClusterLog, ClusterPeerOptions } from "./cluster_options.ts";
import { FetchedCopies } from "./fetched_copies.ts";
import { SealedHere } from "./sealed_here.ts";
import { infoFrom } from "./holder_http.ts";
import { SourceError } from "./source_error.ts";
import { WriteLeases } from "./write_leases.ts";
import { Fetches } from "./fetches.ts";
import type { PartialObject, RelaySink } from "../transport/http/upload_gate.ts";
import { type TransferLimits, transferLimits } from "./transfer_limits.ts";

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
 * - A copy or object evicted to make room withdraws this node as its holder.
 * - {@link ClusterPeer.readArriving} streams an object while it arrives, and
 *   `stat` of an object on its way answers `CREATING` instead of `NOT_FOUND`.
 * - Fetches and origin read-throughs share one transfer budget and one
 *   download rate ({@link ClusterPeer.limits}).
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
export class ClusterPeer
  implements Peer, ArrivingRead, LocalStat, RemovalEvents, ReadsBeside, HoldingSource {
  readonly #home: Peer;
  readonly #token: string | undefined;
  readonly #directory: Directory;
  readonly #node: string;
  #address: string | undefined;
  #piecePort: number | undefined;
  readonly #removeShared: ((objectId: string) => Promise<void>) | undefined;
  readonly #log: ClusterLog;
  readonly #counts: ClusterCounts = clusterCounts();
  /** Fetched copies, held in `replicas`. */
  readonly #copies: FetchedCopies;
  /** Objects sealed in `home`. */
  readonly #sealed: SealedHere;
  readonly #writes: WriteLeases;
  /** Fetches under way, by id. */
  readonly #fetches: Fetches;
  readonly #assembly: Assembly;
  readonly #limits: TransferLimits;
  /** Claims of creates under a given id (without a shared lease store). */
  readonly #claims: CreateClaims | undefined;
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
    this.#token = options.token;
    this.#directory = options.directory;
    this.#node = options.node;
    this.#address = options.address;
    this.#piecePort = options.piecePort;
    this.#removeShared = options.removeShared;
    this.#log = options.log ?? quiet;
    const later = (work: Promise<void>) => this.#later(work);
    this.#copies = new FetchedCopies(
      options.replicas,
      options.directory,
      options.node,
      this.#counts,
      later,
    );
    this.#writes = new WriteLeases(options.home, options.directory, this.#copies);
    this.#sealed = new SealedHere({
      home: options.home,
      directory: options.directory,
      node: options.node,
      self: () => this.#holder(),
      removeShared: options.removeShared,
      token: options.token,
      log: this.#log,
      counts: this.#counts,
      later,
    });
    this.#limits = transferLimits(options);
    this.#fetches = new Fetches(options, {
      limits: this.#limits,
      copies: this.#copies,
      self: () => this.#holder(),
      counts: this.#counts,
      log: this.#log,
      signal: this.#abort.signal,
      later,
    });
    this.#assembly = new Assembly(
      this.#copies,
      options.directory,
      () => this.#holder(),
      this.#log,
    );
    this.#unsubscribe = options.directory.onRemove?.((removal) => this.#removed(removal));
    this.#claims = options.removeShared === undefined
      ? new CreateClaims(options.directory, () => this.#holder())
      : undefined;
    if (this.#address !== undefined) this.#later(this.#announceHeld());
  }

  /**
   * This daemon's HTTP base URL as other daemons reach it; set it once the
   * HTTP server listens (its real port when bound to port 0).
   */
  get address(): string | undefined {
    return this.#address;
  }

  set address(url: string | undefined) {
    const first = this.#address === undefined && url !== undefined;
    this.#address = url;
    if (first) this.#later(this.#announceHeld());
  }

  /**
   * The port of this daemon's native piece listener, on the host of
   * {@link ClusterPeer.address}, announced with it; set it once the
   * listener runs. Undefined: other daemons ask for pieces at the address.
   */
  get piecePort(): number | undefined {
    return this.#piecePort;
  }

  set piecePort(port: number | undefined) {
    this.#piecePort = port;
  }

  /**
   * Calls `listener` with the id of each object as it leaves this daemon's
   * lookups, among its own objects or the copies it fetched (see
   * {@link RemovalEvents}).
   *
   * @returns A function that stops the calls.
   * @throws {UnsupportedError} When the home peer or the copies' peer does not report removals.
   */
  onRemove(listener: (objectId: string) => void): () => void {
    const peers = [this.#home, this.#copies.peer];
    if (!peers.every(offersRemovalEvents)) {
      throw new UnsupportedError(
        "Cannot report removed objects: the peers of this cluster peer do not",
      );
    }
    const stops = peers.map((peer) => peer.onRemove(listener));
    return () => stops.forEach((stop) => stop());
  }

  /** The clock of this daemon's deadlines: its home peer's. */
  get clock(): Clock {
    return (this.#home as Peer & Partial<ReadsBeside>).clock ?? systemClock;
  }

  /**
   * Counts reads served beside this peer's leases (the Unix-socket server's
   * gets answered in C) as readers, reads and local hits of the object that
   * `leaseId` is on, held here or a fetched copy (see {@link ReadsBeside}).
   * None with a lease store shared by the cluster: there, every read asks the
   * store which content under the id is current.
   */
  readsBeside(leaseId: string): BesideReads | undefined {
    if (this.#removeShared !== undefined) return undefined;
    const peer = this.#peerOf(leaseId);
    const reads = offersReadsBeside(peer) ? peer.readsBeside(leaseId) : undefined;
    if (reads === undefined) return undefined;
    return {
      hold: reads.hold,
      read: (count) => {
        this.#counts.cluster_local_hits_total += count;
        reads.read(count);
      },
    };
  }

  /**
   * The transfer budget and download rate this peer's fetches share, which
   * the daemon's origin read-through takes its bytes from too.
   */
  get limits(): TransferLimits {
    return this.#limits;
  }

  /**
   * Bytes of an object still on its way here, as a partial holder serves
   * them: `read` copies a byte range whose pieces are all verified, `lend`
   * lends it to one response.
   *
   * @returns Undefined when no fetch of `objectId` is under way.
   */
  partial(objectId: string): PartialObject | undefined {
    return this.#fetches.partial(objectId) ?? this.#assembly.partial(objectId);
  }

  /**
   * Hands each object fetched from other daemons into a memfd from now on to
   * `sink` (the native GET listener), which then serves its verified pieces
   * to other daemons itself; undefined hands them to none.
   */
  relayTo(sink: RelaySink | undefined): void {
    this.#fetches.relayTo(sink);
  }

  /**
   * How this daemon holds content `digest` of `id` now, as another daemon
   * asks while the directory is away (`GET /v1/cluster/holding/:id`): whole
   * (sealed here, or a fetched copy), the bitfields of a fetch under way
   * (the pieces verified, then those coming), or not at all.
   */
  holding(objectId: string, digest: string): HeldContent {
    if (this.#copies.digest(objectId) === digest || this.#sealed.digest(objectId) === digest) {
      return "whole";
    }
    return this.#fetches.pieces(objectId, digest);
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
  assemble(id: string, size: number, meta: Meta, fill: AssembleFill): Promise<ContentRecord> {
    return this.#assembly.assemble(id, size, meta, fill);
  }

  /**
   * Marks `id` as on its way here before its blob is made (an origin that
   * has not answered yet, a body of no stated length still arriving, room
   * awaited in the transfer budget): meanwhile {@link ClusterPeer.stat}
   * answers `CREATING`, with `size` when given, else with no blob listed.
   * Ends when disposed.
   */
  expect(id: string, size?: number): Disposable {
    return this.#assembly.expect(id, size);
  }

  /**
   * Streams an object on its way here, each byte as soon as its piece has
   * verified: starts (or joins) its fetch and answers once the transfer
   * began. The stream closes once the copy is sealed and announced, and fails
   * with the fetch's error (`NotFoundError` when no holder could send it).
   *
   * @returns Undefined when the object is held here, or was sealed before
   *   its transfer could be streamed: read it with a READ lease.
   */
  async readArriving(objectId: string): Promise<ArrivingObject | undefined> {
    // Held here: answered from memory, so a GET of a local object costs no I/O more.
    if (this.#copies.has(objectId) || this.#sealed.digest(objectId) !== undefined) return undefined;
    if (await this.#home.has(objectId)) return undefined;
    return await this.#fetches.stream(objectId);
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
      if (access === Access.WRITE) return await this.#writes.acquire(objectId, options);
      if (access === Access.CREATE && this.#claims !== undefined) {
        // One id, one content: a create of an id claimed or held elsewhere is refused.
        const release = await this.#claims.claim(objectId);
        try {
          const created = await this.#home.acquire(objectId, access, options);
          this.#claims.hold(created.lease.id, release);
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
      this.#unclaim(leaseId);
    }
  }

  /** Stores a sealed object in one step, as `BasePeer.putObject`, and announces it. */
  async putObject(
    chunks: readonly Uint8Array[],
    size: number,
    options: { id?: string; meta?: Meta; ttl?: number; transfer?: boolean } = {},
  ): Promise<ObjectInfo> {
    // Bad options are the home peer's to refuse, with its typed error.
    const id = (options as { id?: unknown } | null)?.id;
    const release = typeof id === "string" && this.#claims !== undefined
      ? await this.#claims.claim(id)
      : undefined;
    try {
      const info = await this.#putHome(chunks, size, options);
      await this.#announceSealed(info.id);
      return info;
    } finally {
      if (release !== undefined) this.#later(release());
    }
  }

  async #putHome(
    chunks: readonly Uint8Array[],
    size: number,
    options: { id?: string; meta?: Meta; ttl?: number; transfer?: boolean },
  ): Promise<ObjectInfo> {
    const put = (this.#home as Peer & { putObject?: PutObject }).putObject;
    if (put !== undefined) return await put.call(this.#home, chunks, size, options);
    return await putInSteps(this.#home, options.id, chunks, {
      size,
      ...(options.meta === undefined ? {} : { meta: options.meta }),
      ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
    });
  }

  async discard(leaseId: string): Promise<void> {
    const remote = this.#writes.takeRemote(leaseId);
    if (remote !== undefined) {
      await this.#removeShared?.(remote);
      await this.#removeEverywhere(remote);
      return;
    }
    const copy = this.#copies.discard(leaseId);
    if (copy !== undefined) return await copy;
    this.#unclaim(leaseId);
    await this.#home.discard(leaseId);
    const deleted = this.#writes.takeLocal(leaseId);
    if (deleted !== undefined) {
      this.#sealed.delete(deleted);
      await this.#removeEverywhere(deleted);
    }
  }

  release(leaseId: string): Promise<void> {
    const copy = this.#copies.release(leaseId);
    if (copy !== undefined) return copy;
    if (this.#writes.takeRemote(leaseId) !== undefined) return Promise.resolve();
    this.#writes.takeLocal(leaseId);
    this.#unclaim(leaseId);
    return this.#home.release(leaseId);
  }

  renew(leaseId: string, ttl?: number): Promise<Lease> {
    const remote = this.#writes.renewRemote(leaseId, ttl);
    if (remote !== undefined) return Promise.resolve(remote);
    return this.#peerOf(leaseId).renew(leaseId, ttl);
  }

  /**
   * What is known of an object: held here, or on its way here (`CREATING`:
   * fetched from other daemons or read through from an origin, its size and
   * metadata once its blob exists, no blob listed before); else as a holder
   * the directory lists has it, with the holders: a `get` here would fetch
   * it (a shared lease store answers for the objects put on any daemon, not
   * for their read-throughs).
   */
  async stat(objectId: string): Promise<ObjectInfo> {
    try {
      return await this.statLocal(objectId);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      const elsewhere = await this.#statElsewhere(objectId);
      if (elsewhere === undefined) throw error;
      return elsewhere;
    }
  }

  /** What is known of an object held here or on its way here (see {@link LocalStat}). */
  async statLocal(objectId: string): Promise<ObjectInfo> {
    try {
      return this.#withCopy(await this.#home.stat(objectId));
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      const expected = this.#fetches.expected(objectId) ?? this.#assembly.expected(objectId);
      if (this.#copies.has(objectId) || expected !== undefined || this.#assembly.has(objectId)) {
        // A copy, or one on its way whose blob is made (CREATING, with its size and metadata).
        try {
          return await this.#copies.peer.stat(objectId);
        } catch (missing) {
          if (!(missing instanceof NotFoundError)) throw missing;
        }
      }
      // On its way, its blob not made yet; or not here at all.
      if (expected === undefined) throw error;
      return expected;
    }
  }

  async list(): Promise<ObjectInfo[]> {
    const listed = await this.#home.list();
    const ids = new Set(listed.map((info) => info.id));
    for (const info of await this.#copies.peer.list()) if (!ids.has(info.id)) listed.push(info);
    return listed;
  }

  /**
   * A page of the list: this node's own objects in put order, then the
   * copies fetched from others that it does not hold as its own.
   */
  async listPage(options?: ListPageOptions): Promise<ListPage> {
    const { after, limit } = listPageRequest(options ?? {}, 2);
    if (after === undefined || after.stage === 0) {
      const page = await listPageOf(this.#home, options);
      if (page.next !== undefined) return page;
      return (await this.#copies.peer.stats()).objects === 0
        ? page
        : { objects: page.objects, next: "1.0:" };
    }
    const page = await listPageOf(this.#copies.peer, {
      ...(after.id === "" ? {} : { after: formatCursor({ ...after, stage: 0 }) }),
      limit,
    });
    const objects: ObjectInfo[] = [];
    for (const info of page.objects) if (!await this.#home.has(info.id)) objects.push(info);
    return page.next === undefined ? { objects } : { objects, next: `1.${page.next}` };
  }

  async has(objectId: string): Promise<boolean> {
    return this.#copies.has(objectId) || await this.#home.has(objectId);
  }

  async stats(): Promise<PeerStats> {
    const [home, replicas] = await Promise.all([this.#home.stats(), this.#copies.peer.stats()]);
    return {
      ...home,
      objects: home.objects + replicas.objects,
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
      await this.#claims?.close();
      await Promise.allSettled([this.#fetches.settled(), ...this.#background]);
      if (this.#address !== undefined) {
        const held = new Set([...this.#sealed.ids(), ...this.#copies.ids()]);
        await Promise.allSettled([...held].map((id) => this.#directory.withdraw(id, this.#node)));
      }
      this.#sealed.close();
      await this.#copies.close();
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
    if (this.#address === undefined) return undefined;
    const holder = { node: this.#node, address: this.#address };
    return this.#piecePort === undefined ? holder : { ...holder, piecePort: this.#piecePort };
  }

  /**
   * Announces, one at a time, the objects held here that no seal announced:
   * those recovered from the data directory at a restart (a clean stop
   * withdrew them), and any sealed before this daemon had an address.
   */
  async #announceHeld(): Promise<void> {
    let after: string | undefined;
    do {
      const page = await listPageOf(this.#home, after === undefined ? {} : { after });
      for (const info of page.objects) {
        if (this.#abort.signal.aborted) return;
        if (info.state !== "SEALED" || !this.#holds(info)) continue;
        if (this.#sealed.digest(info.id) !== undefined) continue;
        await this.#sealed.announceHeld(info.id);
      }
      after = page.next;
    } while (after !== undefined);
  }

  /** What the first whole holder the directory lists answers of `id`, with the holders. */
  async #statElsewhere(id: string): Promise<ObjectInfo | undefined> {
    const entry = await this.#directory.lookup(id);
    if (entry === undefined) return undefined;
    for (const holder of entry.holders) {
      if (holder.node === this.#node || holder.pieces !== undefined) continue;
      let info;
      try {
        info = await infoFrom(holder, id, this.#token, this.#abort.signal);
      } catch (error) {
        if (error instanceof SourceError) continue;
        throw error;
      }
      if (info.state !== "SEALED" || info.size !== entry.size) continue;
      return {
        ...info as ObjectInfo,
        digest: entry.digest,
        holders: entry.holders.map(({ node, address }) => ({ node, address })),
      };
    }
    return undefined;
  }

  /** Lets go, in the background, of the claim of a create's lease, if it took one. */
  #unclaim(leaseId: string): void {
    if (this.#claims !== undefined && this.#claims.size > 0) {
      this.#later(this.#claims.unclaim(leaseId));
    }
  }

  #peerOf(leaseId: string): Peer {
    return this.#copies.owns(leaseId) ? this.#copies.peer : this.#home;
  }

  async #read(id: string, options: AcquireOptions): Promise<Acquired> {
    const copy = this.#copies.digest(id);
    if (copy !== undefined) {
      const acquired = await this.#copies.read(id, copy, options, true);
      if (acquired !== undefined) return acquired;
    }
    if (options.local === true && this.#fetches.has(id)) {
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
      this.#sealed.forget(id);
      throw new NotFoundError(`No object: ${id} (the copy here was replaced)`);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      if (options.local === true) {
        // On its way here: busy, not missing, so that a daemon asking for a
        // piece (its HTTP server serves those it has) does not withdraw it.
        if (this.#fetches.has(id) || this.#assembly.has(id)) {
          throw new StoreUnavailableError(`Cannot read object ${id} yet: on its way here`);
        }
        // Sealed here while the lease store was asked: the copy, not a miss.
        const arrived = this.#copies.digest(id);
        const acquired = arrived === undefined
          ? undefined
          : await this.#copies.read(id, arrived, options, true);
        if (acquired !== undefined) return acquired;
        throw error;
      }
      await this.#fetches.start(id, error).flight;
    }
    const fetched = this.#copies.digest(id);
    const acquired = fetched === undefined
      ? undefined
      : await this.#copies.read(id, fetched, options, false);
    if (acquired === undefined) throw new NotFoundError(`No object: ${id}`);
    return acquired;
  }

  /** Forgets `id` in the directory, which tells every holder, and drops the copy here. */
  async #removeEverywhere(id: string): Promise<void> {
    await this.#directory.remove(id);
    const copy = this.#copies.digest(id);
    if (copy !== undefined) await this.#copies.drop(id, copy);
  }

  /**
   * `info` of a shared lease store, whose holders are the daemons that put
   * the object, with this daemon added when it holds a copy of that content:
   * the copies fetched here are recorded in the directory only.
   */
  #withCopy(info: ObjectInfo): ObjectInfo {
    const holders = info.holders;
    if (holders === undefined || info.digest === undefined) return info;
    if (this.#copies.digest(info.id) !== info.digest || this.#holds(info)) return info;
    const address = this.#address;
    const self = address === undefined ? { node: this.#node } : { node: this.#node, address };
    return { ...info, holders: [...holders, self] };
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
    if (this.#copies.digest(id) === digest) this.#later(this.#copies.drop(id, digest));
    if (this.#sealed.digest(id) === digest) this.#sealed.forget(id);
  }

  /** Records and announces an object just sealed here, in place of a copy of its id. */
  async #announceSealed(id: string): Promise<void> {
    const copy = this.#copies.digest(id);
    if (copy !== undefined) await this.#copies.drop(id, copy);
    await this.#sealed.announce(id);
  }

  #later(work: Promise<void>): void {
    const done = work.catch((error) => this.#log.warn(String(error))).finally(() =>
      this.#background.delete(done)
    );
    this.#background.add(done);
  }
}
