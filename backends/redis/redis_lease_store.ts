import type { Clock } from "../../core/clock.ts";
import { systemClock } from "../../core/clock.ts";
import {
  AlreadyExistsError,
  InternalError,
  InvalidArgumentError,
  LeaseExpiredError,
  StoreUnavailableError,
  UnknownLeaseError,
} from "../../core/errors.ts";
import { Access } from "../../core/lease.ts";
import type {
  AnnotatePatch,
  LeaseEnd,
  LeaseRecord,
  LeaseStore,
  LocalObjects,
  SealPatch,
} from "../../core/lease_store.ts";
import { checkDiscard, checkGrant, checkLive, checkSeal } from "../../core/lifecycle.ts";
import type { ObjectInfo } from "../../core/object.ts";
import {
  creatingArgs,
  decodeObject,
  expiryArgs,
  type Fields,
  sealedEntry,
  versionOf,
} from "./codec.ts";
import {
  type Exec,
  isClusterUrl,
  type RedisBackoff,
  RedisConnection,
  type RedisLogger,
} from "./connection.ts";
import { Deadline, LATE } from "./deadline.ts";
import {
  leaseKey,
  nodeKeys,
  nodeLeasesKey,
  objectKey,
  type Script,
  SCRIPTS,
  shardKeys,
  shardOf,
} from "./scripts.ts";

/** Options of {@link RedisLeaseStore.connect}. */
export interface RedisLeaseStoreOptions {
  /**
   * `redis://[user:pass@]host:port/db`, or `rediss://` for TLS; for a Redis
   * Cluster, `redis+cluster://[user:pass@]host:port,host:port,...` (or
   * `rediss+cluster://`) with some of its masters. Default
   * `redis://127.0.0.1:6379/0`.
   */
  readonly url?: string;
  /**
   * How many hash slots the objects of the namespace are spread over, each
   * with its own indexes: `list` and `counts` make one call per shard. Every
   * daemon of a namespace must use the same count. Default 1 for a standalone
   * Redis, 64 for a cluster.
   */
  readonly shards?: number;
  /** Every key is `<namespace>:...`; daemons sharing a namespace share objects. Default `packice`. */
  readonly namespace?: string;
  /** This node's id in the namespace. Default `<hostname>-<pid>`. */
  readonly node?: string;
  /** Where this node serves, recorded with each object it holds. */
  readonly address?: string;
  /** The clock that decides expiry: pass the peer's. Default: the system clock. */
  readonly clock?: Clock;
  /**
   * How long, in milliseconds, this node counts as alive after its last
   * heartbeat (sent every third of it). Its leases without a TTL end when it
   * stops counting. Default 15000.
   */
  readonly liveness?: number;
  /** Attempts at the first connection before giving up; `Infinity` keeps trying. Default 10. */
  readonly connectAttempts?: number;
  /** Delays between connection attempts, also when reconnecting. */
  readonly backoff?: RedisBackoff;
  /**
   * Milliseconds Redis has to answer each call. A call past it (checked every
   * quarter of it) fails with {@link StoreUnavailableError} and the connection
   * is dropped and retried, as when Redis goes away: this bounds calls to a
   * Redis that is up but hung. Default 2000.
   */
  readonly commandTimeout?: number;
  /**
   * Milliseconds a READ of an object this node holds waits for Redis before
   * it is served here all the same, as during an outage; until Redis answers
   * again, such reads do not wait for it at all. Default 200.
   */
  readonly readFailover?: number;
  /** Where connection trouble and recovery are reported. Default: nowhere. */
  readonly log?: RedisLogger;
}

/** A lease this node granted. */
interface OwnLease {
  record: LeaseRecord;
  /** For a CREATE lease until seal: the object being created, which goes when the lease ends. */
  creating: ObjectInfo | undefined;
  /** Whether Redis has the lease, as far as this node knows. */
  stored: boolean;
}

/** What most scripts return: a status, then the fields of the object they saw or removed. */
type Reply = [status: string, ...fields: string[]];

/** How many ended lease ids are remembered, to tell "expired" from "unknown". */
const EXPIRED_MEMORY = 4096;
/** Entries per script call when registering, restoring, ending or reading many. */
const BATCH = 500;
/** Entries a reap script ends per call, so one call never holds Redis for long. */
const REAP_LIMIT = 1000;
/** Objects whose last granted version is kept, so a grant need not send them again. */
const CACHED_OBJECTS = 4096;
/** Objects whose copy here is checked against Redis per tick, at most. */
const VERIFY_LIMIT = 100;

/**
 * Leases and the object directory in Redis, shared by every daemon on one
 * namespace; the bytes stay on the nodes that hold them.
 *
 * Every state change is one Lua script applying the rules of
 * `core/lifecycle.ts`, so daemons racing on one id agree; a refusal comes
 * back as an error code, and the error is rebuilt here by running the same
 * lifecycle check on the state the script saw. The sealed objects of the
 * namespace, with their holders, are the directory that `list` and `stat`
 * answer from on every node.
 *
 * Redis Cluster: with a `redis+cluster://` URL the namespace is spread over
 * `shards` hash slots by object id; every script touches keys of one slot
 * only, all passed in KEYS (see `scripts.ts`). A call about one object costs
 * the same as on a standalone Redis; `list` and `counts` make one call per
 * shard, and reaping a dead node one pass per shard.
 *
 * Expiry: a lease with a TTL expires by the injected clock, which every
 * script is given; its Redis key carries the same TTL as a Redis expiry, the
 * backstop for a daemon that died, and a CREATING object's record expires
 * with its CREATE lease. A lease without a TTL cannot carry an expiry, so it
 * is bound to its node instead: it lives as long as the node's liveness,
 * which a heartbeat extends every third of `liveness`. When that lapses the
 * node counts as dead, its leases can no longer block a CREATE, and any live
 * node reaps them. This costs one write per heartbeat rather than one per
 * lease.
 *
 * Outages: while Redis is unreachable, calls that need it fail at once with
 * {@link StoreUnavailableError}, except READ leases on sealed objects this node
 * holds (known through {@link RedisLeaseStore.attach}), which are granted and
 * released here and reconciled when Redis is back; `stat` of such an object
 * answers with the copy here. A Redis that is up but does not answer (hung,
 * stopped) counts as unreachable once a call has waited `commandTimeout` for
 * it, and a READ or `stat` of an object held here waits for it only
 * `readFailover`. The
 * connection comes back by itself; when Redis lost this node's state (it
 * restarted empty, or other nodes took this one for dead), the node registers
 * its objects and leases again.
 *
 * One id, one content: holders are recorded per content. A copy registered
 * again joins an object Redis records only when its size, blob sizes and
 * digest match (the digest is computed here when not known yet); a copy that
 * does not match is dropped on this node (see {@link LocalObjects.forfeit}),
 * logged and counted (`directory_conflicts_total` in
 * {@link RedisLeaseStore.metrics}), and a copy that cannot be checked yet (the
 * record has no digest so far) is checked again at each heartbeat, served by
 * no one meanwhile: a peer serves its copy only while Redis lists it as a
 * holder.
 *
 * Reads: a grant sends the version of the object this node last saw, and
 * Redis sends the object back only when it changed since; every change to an
 * object gives it a new version from its shard's counter.
 *
 * `counts().objects` is the whole namespace; `counts().leases` is this node's.
 *
 * @example Two daemons, one namespace
 * ```ts ignore
 * import { MemoryPeer, RedisLeaseStore } from "@packice/packice";
 * const url = "redis://127.0.0.1:6379/0";
 * const a = await RedisLeaseStore.connect({ url, namespace: "demo", node: "a" });
 * await using peer = new MemoryPeer({ leases: a, node: a.node });
 * const b = await RedisLeaseStore.connect({ url, namespace: "demo", node: "b" });
 * console.log((await b.list()).map((object) => [object.id, object.holders]));
 * await b.close();
 * ```
 */
export class RedisLeaseStore implements LeaseStore {
  /** This node's id in the namespace. */
  readonly node: string;
  /** The namespace: every key starts with `<namespace>:`. */
  readonly namespace: string;
  readonly #shards: number;
  /** The fixed keys of each shard, as shard scripts take them first. */
  readonly #shardKeys: readonly string[][];
  readonly #nodeKeys: readonly string[];
  /** The epoch of each shard as this node last saw it: another one means the shard lost its state. */
  readonly #epochs: (string | undefined)[];
  readonly #address: string;
  readonly #clock: Clock;
  readonly #liveness: number;
  readonly #log: RedisLogger | undefined;
  readonly #incarnation = crypto.randomUUID();
  readonly #connection: RedisConnection;
  readonly #own = new Map<string, OwnLease>();
  readonly #expired = new Set<string>();
  /** Leases ended or renewed here while Redis was away, whose copy there must go. */
  readonly #pendingEnds = new Map<string, LeaseRecord>();
  /** The last version of an object a grant returned, by id. */
  readonly #granted = new Map<string, { version: string; info: ObjectInfo }>();
  /** Ids of copies held here that Redis does not list as this node's yet: checked at each tick. */
  readonly #unverified = new Set<string>();
  readonly #readFailover: Deadline;
  /** Set when a read found Redis slow: reads of objects held here skip it until it answers. */
  #degraded = false;
  readonly #counters = { conflicts: 0, localReads: 0 };
  readonly #gated: Exec;
  #local: LocalObjects | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #ticking: Promise<void> | undefined;
  #verifying: Promise<void> | undefined;
  #closed = false;

  private constructor(options: RedisLeaseStoreOptions) {
    this.namespace = checkName(options.namespace ?? "packice", "namespace");
    this.node = checkName(options.node ?? defaultNode(), "node id");
    const url = options.url ?? "redis://127.0.0.1:6379/0";
    this.#shards = checkCount(options.shards ?? (isClusterUrl(url) ? 64 : 1), "shards", 1, false);
    this.#shardKeys = Array.from(
      { length: this.#shards },
      (_, s) => shardKeys(this.namespace, s, this.node),
    );
    this.#nodeKeys = nodeKeys(this.namespace);
    this.#epochs = new Array(this.#shards).fill(undefined);
    this.#address = options.address ?? "";
    this.#clock = options.clock ?? systemClock;
    this.#liveness = checkCount(options.liveness ?? 15_000, "liveness", 30, false);
    this.#log = options.log;
    this.#readFailover = new Deadline(
      checkCount(options.readFailover ?? 200, "readFailover", 1, false),
    );
    this.#connection = new RedisConnection({
      url,
      attempts: checkCount(options.connectAttempts ?? 10, "connectAttempts", 1, true),
      backoff: {
        initial: checkCount(options.backoff?.initial ?? 100, "backoff.initial", 1, false),
        max: checkCount(options.backoff?.max ?? 5000, "backoff.max", 1, false),
      },
      commandTimeout: checkCount(options.commandTimeout ?? 2000, "commandTimeout", 1, false),
      log: options.log,
      scripts: Object.values(SCRIPTS),
      onReady: (first, exec) => this.#onReady(first, exec),
    });
    this.#gated = (script, keys, args) => this.#connection.run(script, keys, args);
  }

  /**
   * Connects to Redis, retrying with backoff, and claims this node's id in the
   * namespace: leases and holdings left by an earlier run of the same node id
   * are ended.
   *
   * @param options The URL, namespace, node id, clock and retry policy.
   * @returns The connected store.
   * @throws {StoreUnavailableError} When Redis cannot be reached after every attempt,
   *   or refuses the credentials.
   * @throws {InvalidArgumentError} For a malformed URL or option.
   *
   * @example Connect, and give the store to a peer
   * ```ts ignore
   * import { MemoryPeer, RedisLeaseStore } from "@packice/packice";
   * const leases = await RedisLeaseStore.connect({
   *   url: "redis://127.0.0.1:6379/0",
   *   namespace: "packice",
   *   node: "node-1",
   *   address: "http://10.0.0.1:7070",
   * });
   * await using peer = new MemoryPeer({ leases, node: leases.node });
   * ```
   */
  static async connect(options: RedisLeaseStoreOptions = {}): Promise<RedisLeaseStore> {
    const store = new RedisLeaseStore(options);
    try {
      await store.#connection.open();
    } catch (error) {
      await store.#connection.close();
      throw error;
    }
    const heartbeat = setInterval(() => store.#tick(), Math.floor(store.#liveness / 3));
    Deno.unrefTimer(heartbeat);
    store.#heartbeat = heartbeat;
    return store;
  }

  /** Whether Redis is reachable now; when not, calls that need it fail fast. */
  get available(): boolean {
    return this.#connection.available;
  }

  attach(local: LocalObjects): void {
    this.#local = local;
  }

  async create(info: ObjectInfo, lease: LeaseRecord): Promise<void> {
    const now = this.#clock.now();
    // An object whose creator's node may be dead: asked, then replaced if it is.
    let dead = "";
    for (;;) {
      const [status, node] = await this.#onObject(
        this.#gated,
        SCRIPTS.create,
        info.id,
        now,
        [lease.id],
        [info.id, lease.id, ...expiryArgs(lease, now), ...creatingArgs(info), dead],
        dead === "" ? [] : [nodeLeasesKey(this.namespace, shardOf(info.id, this.#shards), dead)],
      ) as Reply;
      if (status === "ASK" && node !== dead && !await this.#alive(node!)) {
        dead = node!;
        continue;
      }
      if (status === "ALREADY_EXISTS" || status === "ASK") {
        throw new AlreadyExistsError(`Object already exists: ${info.id}`);
      }
      if (status !== "OK") throw disagreement(SCRIPTS.create, status);
      break;
    }
    this.#own.set(lease.id, { record: this.#stamp(lease), creating: info, stored: true });
  }

  async grant(objectId: string, lease: LeaseRecord): Promise<ObjectInfo> {
    if (lease.access === Access.CREATE) checkGrant(objectId, undefined, lease.access);
    const now = this.#clock.now();
    const held = lease.access === Access.READ ? this.#local?.get(objectId) : undefined;
    if (held !== undefined && this.#degraded) return this.#readHere(lease, held);
    const cached = this.#granted.get(objectId);
    let reply: Reply;
    try {
      const call = this.#onObject(this.#gated, SCRIPTS.grant, objectId, now, [lease.id], [
        objectId,
        lease.id,
        lease.access,
        ...expiryArgs(lease, now),
        cached?.version ?? "",
      ]) as Promise<Reply>;
      if (held === undefined) {
        reply = await call;
      } else {
        const answer = await this.#readFailover.within(call);
        if (answer === LATE) {
          this.#slow(call);
          return this.#readHere(lease, held);
        }
        reply = answer;
      }
    } catch (error) {
      if (held === undefined || !(error instanceof StoreUnavailableError)) throw error;
      return this.#readHere(lease, held);
    }
    const [status, ...fields] = reply;
    const info = decodeObject(objectId, fields);
    if (status !== "OK") {
      checkGrant(objectId, info, lease.access);
      throw disagreement(SCRIPTS.grant, status);
    }
    this.#own.set(lease.id, { record: this.#stamp(lease), creating: undefined, stored: true });
    if (info === undefined) return cached!.info;
    this.#remember(objectId, versionOf(fields), info);
    // A copy here that Redis does not list is checked against its record at the next tick.
    if (held !== undefined && !listed(info, this.node)) this.#unverified.add(objectId);
    return info;
  }

  /**
   * A READ of a sealed object held here, while Redis is away or slow: the
   * lease is kept on this node and put into Redis when it answers again.
   */
  #readHere(lease: LeaseRecord, held: ObjectInfo): ObjectInfo {
    this.#own.set(lease.id, { record: this.#stamp(lease), creating: undefined, stored: false });
    this.#counters.localReads++;
    return held;
  }

  /** A read waited `readFailover` for `call`: reads of objects held here skip Redis until it answers. */
  #slow(call: Promise<unknown>): void {
    if (!this.#degraded) {
      this.#degraded = true;
      this.#log?.warn(
        `Redis did not answer a read within ${this.#readFailover.ms} ms: objects held here ` +
          `are read without it until it answers`,
      );
    }
    call.then(() => this.#degraded = false, () => {});
  }

  lease(leaseId: string): Promise<LeaseRecord> {
    try {
      return Promise.resolve(this.#owned(leaseId).record);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async seal(leaseId: string, sealed: SealPatch): Promise<ObjectInfo> {
    const own = this.#owned(leaseId);
    if (own.record.access !== Access.CREATE) checkSeal(own.record, undefined);
    const now = this.#clock.now();
    const [status, ...fields] = await this.#onLease(SCRIPTS.seal, own.record, now, [
      String(sealed.sealedAt),
      sealed.digest ?? "",
      this.#address,
    ]) as Reply;
    const info = decodeObject(own.record.objectId, fields);
    switch (status) {
      case "OK":
        own.creating = undefined;
        this.#learnEpoch(own.record.objectId, versionOf(fields));
        return info!;
      case "UNKNOWN_LEASE":
        throw gone(own.record);
      case "LEASE_EXPIRED":
        checkLive(own.record, now);
        break;
      default:
        checkSeal(own.record, info);
    }
    throw disagreement(SCRIPTS.seal, status);
  }

  async discard(leaseId: string): Promise<LeaseEnd> {
    const own = this.#owned(leaseId);
    checkDiscard(own.record);
    const now = this.#clock.now();
    const [status, ...fields] = await this.#onLease(SCRIPTS.discard, own.record, now) as Reply;
    switch (status) {
      case "OK": {
        this.#forget(leaseId, false);
        const { objectId } = own.record;
        // Gone from Redis already (deleted by another node): the bytes here go all the same.
        const removed = decodeObject(objectId, fields) ?? own.creating ??
          this.#local?.get(objectId);
        return ended(own.record, removed);
      }
      case "UNKNOWN_LEASE":
        throw gone(own.record);
      case "LEASE_EXPIRED":
        checkLive(own.record, now);
        break;
      case "WRONG_ACCESS":
        checkDiscard(own.record);
    }
    throw disagreement(SCRIPTS.discard, status);
  }

  async release(leaseId: string): Promise<LeaseEnd> {
    const own = this.#owned(leaseId);
    if (!own.stored || (this.#degraded && own.record.access === Access.READ)) {
      // Granted or renewed while Redis was away, or not put back yet: it ends here,
      // and in Redis (which may have it by now, or soon) at the next reconciliation.
      this.#forget(leaseId, false);
      this.#pendingEnds.set(leaseId, own.record);
      return ended(own.record, own.creating);
    }
    const now = this.#clock.now();
    let reply: Reply;
    try {
      reply = await this.#onLease(SCRIPTS.release, own.record, now) as Reply;
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || own.record.access !== Access.READ) {
        throw error;
      }
      // A read ends here while Redis is away; Redis hears of it when it is back.
      this.#forget(leaseId, false);
      this.#pendingEnds.set(leaseId, own.record);
      return { lease: own.record };
    }
    const [status, ...fields] = reply;
    switch (status) {
      case "OK":
      // Redis lost the lease (its expiry ran ahead of this clock, or this node was
      // taken for dead): a release ends it here all the same.
      case "UNKNOWN_LEASE":
        this.#forget(leaseId, false);
        return ended(own.record, decodeObject(own.record.objectId, fields) ?? own.creating);
      case "LEASE_EXPIRED":
        checkLive(own.record, now);
    }
    throw disagreement(SCRIPTS.release, status);
  }

  async renew(leaseId: string, ttl: number, now: number): Promise<LeaseRecord> {
    const own = this.#owned(leaseId);
    const expiresAt = now + ttl;
    if (own.stored) {
      let status = "OK";
      try {
        [status] = await this.#onLease(SCRIPTS.renew, own.record, now, [
          String(ttl),
          String(expiresAt),
        ]) as Reply;
      } catch (error) {
        if (!(error instanceof StoreUnavailableError) || own.record.access !== Access.READ) {
          throw error;
        }
        // Renewed here while Redis is away; its copy there is replaced when it is back.
        own.stored = false;
        this.#pendingEnds.set(leaseId, own.record);
      }
      if (status === "UNKNOWN_LEASE") throw gone(own.record);
      if (status === "LEASE_EXPIRED") checkLive(own.record, now);
      if (status !== "OK") throw disagreement(SCRIPTS.renew, status);
    }
    own.record = { ...own.record, ttl, expiresAt };
    return own.record;
  }

  async expire(now: number): Promise<LeaseEnd[]> {
    const due = [...this.#own.values()].filter((own) =>
      own.record.expiresAt !== undefined && own.record.expiresAt <= now
    );
    if (due.length === 0) return [];
    const replies = new Map<string, Reply>();
    const stored = due.filter((own) => own.stored).map((own) => own.record);
    try {
      await this.#end(this.#gated, "expire", stored, now, replies);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
    }
    const ends: LeaseEnd[] = [];
    for (const own of due) {
      const { id, objectId } = own.record;
      const reply = replies.get(id);
      if (reply?.[0] === "LIVE") continue;
      // Not reached (Redis went away, or not stored yet): it ends here, and there when Redis is back.
      if (reply === undefined) this.#pendingEnds.set(id, own.record);
      this.#forget(id, true);
      ends.push(ended(own.record, decodeObject(objectId, reply?.slice(1) ?? []) ?? own.creating));
    }
    return ends;
  }

  async annotate(objectId: string, patch: AnnotatePatch): Promise<void> {
    const fields: string[] = [];
    if (patch.digest !== undefined) fields.push("digest", patch.digest);
    if (patch.tier !== undefined) fields.push("tier", patch.tier);
    if (fields.length === 0) return;
    await this.#onObject(this.#gated, SCRIPTS.annotate, objectId, this.#clock.now(), [], fields);
  }

  async stat(objectId: string): Promise<ObjectInfo | undefined> {
    const held = this.#local?.get(objectId);
    if (held !== undefined && this.#degraded) return held;
    let fields: Fields;
    try {
      const call = this.#onObject(this.#gated, SCRIPTS.get, objectId, this.#clock.now(), [], []);
      const answer = held === undefined ? await call : await this.#readFailover.within(call);
      if (answer === LATE) {
        this.#slow(call);
        return held;
      }
      [fields] = answer as [Fields];
    } catch (error) {
      if (held === undefined || !(error instanceof StoreUnavailableError)) throw error;
      return held;
    }
    return decodeObject(objectId, fields);
  }

  async list(): Promise<ObjectInfo[]> {
    const shards = await Promise.all(this.#shardKeys.map(async (keys, shard) => {
      const now = String(this.#clock.now());
      const [sealed, creating] = await this.#gated(SCRIPTS.index, keys, [
        now,
        this.node,
        "list",
      ]) as [
        string[],
        string[],
      ];
      const objects: ObjectInfo[] = [];
      for (const batch of chunks([...sealed, ...creating])) {
        const replies = await this.#gated(
          SCRIPTS.get,
          [...keys, ...batch.map((id) => objectKey(this.namespace, shard, id))],
          [now, this.node],
        ) as Fields[];
        batch.forEach((id, i) => {
          const info = decodeObject(id, replies[i]!);
          if (info !== undefined) objects.push(info);
        });
      }
      return objects;
    }));
    return shards.flat();
  }

  async counts(): Promise<{ objects: number; leases: number }> {
    const now = String(this.#clock.now());
    const counts = await Promise.all(
      this.#shardKeys.map((keys) => this.#gated(SCRIPTS.index, keys, [now, this.node, "count"])),
    ) as [number, number][];
    let objects = 0;
    for (const [sealed, creating] of counts) objects += sealed + creating;
    return { objects, leases: this.#own.size };
  }

  conflict(local: ObjectInfo, recorded: ObjectInfo): void {
    this.#dropped(local, `Redis records other bytes under that id (${describeContent(recorded)})`);
  }

  /**
   * Figures for a metrics endpoint: `directory_conflicts_total` (copies held
   * here dropped because Redis records other bytes under their id),
   * `directory_local_reads_total` (READ leases granted here while Redis was
   * away or slow), `directory_unverified_objects` (copies held here waiting
   * to be checked against Redis) and `directory_available` (1 while Redis is
   * reachable).
   *
   * @returns The figures, by name.
   */
  metrics(): Readonly<Record<string, number>> {
    return {
      directory_conflicts_total: this.#counters.conflicts,
      directory_local_reads_total: this.#counters.localReads,
      directory_unverified_objects: this.#unverified.size,
      directory_available: this.#connection.available ? 1 : 0,
    };
  }

  /**
   * Leaves the namespace: ends this node's leases (an object it was creating
   * goes with its lease), drops it as holder (an object no one else holds
   * leaves lookups), then closes the connection. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    await this.#ticking;
    await this.#verifying;
    this.#readFailover.close();
    if (this.#connection.available) {
      try {
        const records = [...this.#own.values()].map((own) => own.record);
        await this.#end(this.#gated, "drop", records, this.#clock.now());
        await this.#reap(this.#gated, this.node);
      } catch (error) {
        this.#log?.warn(`Cannot leave namespace ${this.namespace}: ${(error as Error).message}`);
      }
    }
    this.#own.clear();
    this.#pendingEnds.clear();
    this.#granted.clear();
    this.#unverified.clear();
    await this.#connection.close();
  }

  /** Same as {@link RedisLeaseStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Runs a shard script about one object: the keys of its shard, its own key,
   * the keys of the leases `leases` on it, then `extra` keys.
   */
  #onObject(
    exec: Exec,
    script: Script,
    objectId: string,
    now: number,
    leases: readonly string[],
    args: readonly string[],
    extra: readonly string[] = [],
  ): Promise<unknown> {
    const shard = shardOf(objectId, this.#shards);
    const keys = [...this.#shardKeys[shard]!, objectKey(this.namespace, shard, objectId)];
    for (const lease of leases) keys.push(leaseKey(this.namespace, shard, lease));
    keys.push(...extra);
    return exec(script, keys, [String(now), this.node, ...args]);
  }

  /** Runs a shard script about one lease of this node. */
  #onLease(
    script: Script,
    lease: LeaseRecord,
    now: number,
    args: readonly string[] = [],
  ): Promise<unknown> {
    return this.#onObject(this.#gated, script, lease.objectId, now, [lease.id], [
      lease.id,
      lease.access,
      lease.objectId,
      timed(lease),
      ...args,
    ]);
  }

  /** Ends leases of this node, shard by shard; each reply goes into `replies`, by lease id. */
  async #end(
    exec: Exec,
    mode: "expire" | "drop",
    leases: readonly LeaseRecord[],
    now: number,
    replies?: Map<string, Reply>,
  ): Promise<void> {
    for (const [shard, records] of this.#byShard(leases, (lease) => lease.objectId)) {
      for (const batch of chunks(records)) {
        const keys = [...this.#shardKeys[shard]!];
        const args = [String(now), this.node, mode];
        for (const lease of batch) {
          keys.push(
            objectKey(this.namespace, shard, lease.objectId),
            leaseKey(this.namespace, shard, lease.id),
          );
          args.push(lease.id);
        }
        const out = await exec(SCRIPTS.end, keys, args) as Reply[];
        batch.forEach((lease, i) => replies?.set(lease.id, out[i]!));
      }
    }
  }

  /** Items grouped by the shard of their object id. */
  #byShard<T>(items: readonly T[], idOf: (item: T) => string): Map<number, T[]> {
    const shards = new Map<number, T[]>();
    for (const item of items) {
      const shard = shardOf(idOf(item), this.#shards);
      let list = shards.get(shard);
      if (list === undefined) shards.set(shard, list = []);
      list.push(item);
    }
    return shards;
  }

  /** Whether `node` is alive in the namespace. */
  async #alive(node: string): Promise<boolean> {
    const now = String(this.#clock.now());
    return await this.#gated(SCRIPTS.dead, this.#nodeKeys, [now, this.node, node]) === "1";
  }

  #stamp(lease: LeaseRecord): LeaseRecord {
    return { ...lease, node: this.node };
  }

  #owned(leaseId: string): OwnLease {
    const own = this.#own.get(leaseId);
    if (own === undefined) {
      if (this.#expired.has(leaseId)) throw new LeaseExpiredError(`Lease ${leaseId} has expired`);
      throw new UnknownLeaseError(`Unknown lease: ${leaseId}`);
    }
    checkLive(own.record, this.#clock.now());
    return own;
  }

  #remember(objectId: string, version: string, info: ObjectInfo): void {
    this.#granted.delete(objectId);
    this.#granted.set(objectId, { version, info });
    if (this.#granted.size > CACHED_OBJECTS) {
      this.#granted.delete(this.#granted.keys().next().value!);
    }
  }

  #forget(leaseId: string, expired: boolean): void {
    this.#own.delete(leaseId);
    if (!expired) return;
    this.#expired.add(leaseId);
    if (this.#expired.size > EXPIRED_MEMORY) {
      this.#expired.delete(this.#expired.values().next().value!);
    }
  }

  /** Runs on each connection before calls go through. */
  async #onReady(first: boolean, exec: Exec): Promise<void> {
    if (first) {
      if (await this.#beat(exec) === "TAKEN") {
        this.#log?.warn(
          `Node ${this.node} was alive in namespace ${this.namespace}: taking over from its ` +
            `earlier run (or from another daemon with the same node id)`,
        );
      }
      // Whatever an earlier run of this node id left is dead.
      await this.#reap(exec, this.node);
    }
    const beat = await this.#beat(exec);
    if (!first && beat !== "OK") await this.#registerAgain(exec, beat);
    await this.#reconcile(exec);
    this.#degraded = false;
  }

  /** Heartbeat, re-registration when Redis lost this node, reconciliation, and reaping of dead nodes. */
  #tick(): void {
    if (this.#ticking !== undefined || !this.#connection.available) return;
    this.#ticking = (async () => {
      const beat = await this.#beat(this.#gated);
      if (beat !== "OK") await this.#registerAgain(this.#gated, beat);
      await this.#reconcile(this.#gated);
      await this.#checkEpochs(this.#gated);
      await this.#reap(this.#gated, "");
      // Apart from the heartbeat, which hashing large copies must not hold up.
      this.#verifying ??= this.#verify(this.#gated).catch((error) => {
        if (!(error instanceof StoreUnavailableError)) {
          this.#log?.warn(`Cannot check copies held here: ${(error as Error).message}`);
        }
      }).finally(() => this.#verifying = undefined);
    })().catch((error) => {
      if (!(error instanceof StoreUnavailableError)) {
        this.#log?.warn(`Redis heartbeat failed: ${(error as Error).message}`);
      }
    }).finally(() => this.#ticking = undefined);
  }

  async #beat(exec: Exec): Promise<string> {
    return await exec(SCRIPTS.heartbeat, this.#nodeKeys, [
      String(this.#clock.now()),
      this.node,
      this.#incarnation,
      String(this.#liveness),
      this.#address,
    ]) as string;
  }

  /**
   * Ends the state of dead nodes: their leases without a TTL (abandoning the
   * objects they were creating) and their holdings (a sealed object left
   * without a holder leaves lookups), shard by shard, then forgets them.
   * Leases with a TTL end by their Redis expiry. `node`: one node to reap
   * whether or not it looks alive (this node's earlier run, or itself when
   * closing), or '' for every node whose liveness lapsed.
   */
  async #reap(exec: Exec, node: string): Promise<void> {
    const now = () => String(this.#clock.now());
    const nodes = node !== ""
      ? [node]
      : await exec(SCRIPTS.dead, this.#nodeKeys, [now(), this.node, ""]) as string[];
    for (const dead of nodes) {
      for (let shard = 0; shard < this.#shards; shard++) {
        const keys = shardKeys(this.namespace, shard, dead);
        for (;;) {
          const [pairs, held] = await exec(SCRIPTS.owned, keys, [
            now(),
            this.node,
            dead,
            String(REAP_LIMIT),
          ]) as [string[], string[]];
          if (pairs.length === 0 && held.length === 0) break;
          const leases = pairs.filter((_, i) => i % 2 === 0);
          const objects = [...pairs.filter((_, i) => i % 2 === 1).map(objectOfLease), ...held];
          await exec(
            SCRIPTS.reap,
            [...keys, ...objects.map((id) => objectKey(this.namespace, shard, id))],
            [now(), this.node, dead, String(leases.length), ...leases, ...held],
          );
        }
      }
      await exec(SCRIPTS.forget, this.#nodeKeys, [now(), this.node, dead, node === "" ? "" : "1"]);
    }
  }

  /** Puts this node's objects and leases back into a Redis that lost them. */
  async #registerAgain(exec: Exec, beat: string): Promise<void> {
    this.#log?.warn(
      beat === "TAKEN"
        ? `Node ${this.node} was claimed by another daemon with the same node id: registering again`
        : `Redis lost the state of node ${this.node} (it restarted empty, or other nodes took ` +
          `this one for dead): registering its objects and leases again`,
    );
    this.#granted.clear();
    this.#epochs.fill(undefined);
    for (const objects of this.#byShard(this.#local?.list() ?? [], (info) => info.id).values()) {
      for (const batch of chunks(objects)) await this.#register(exec, batch, false);
    }
    for (const own of this.#own.values()) own.stored = false;
  }

  /** Remembers the epoch of an object's shard from a version, when not known yet. */
  #learnEpoch(objectId: string, version: string): void {
    const shard = shardOf(objectId, this.#shards);
    this.#epochs[shard] ??= version.slice(0, version.indexOf(".")) || undefined;
  }

  /**
   * Registers again the objects and leases held here on each shard that lost
   * its state since this node last looked (on a cluster, a master restarted
   * empty while the one keeping node liveness stayed up).
   */
  async #checkEpochs(exec: Exec): Promise<void> {
    const held = this.#byShard(this.#local?.list() ?? [], (info) => info.id);
    const leases = this.#byShard([...this.#own.values()], (own) => own.record.objectId);
    let lost = false;
    for (const shard of new Set([...held.keys(), ...leases.keys()])) {
      const now = String(this.#clock.now());
      const epoch = await exec(SCRIPTS.epoch, this.#shardKeys[shard]!, [now, this.node]) as string;
      const seen = this.#epochs[shard];
      this.#epochs[shard] = epoch;
      if (seen === undefined || seen === epoch) continue;
      const objects = held.get(shard) ?? [];
      this.#log?.warn(
        `Redis lost shard ${shard} of namespace ${this.namespace}: registering the ` +
          `${objects.length} objects and ${leases.get(shard)?.length ?? 0} leases held here again`,
      );
      lost = true;
      this.#granted.clear();
      for (const batch of chunks(objects)) await this.#register(exec, batch, false);
      for (const own of leases.get(shard) ?? []) own.stored = false;
    }
    if (lost) await this.#reconcile(exec);
  }

  /**
   * Checks copies held here that Redis does not list as this node's against
   * the record under their id, with their digest (computed here if need be):
   * the same bytes join as holder, other bytes are dropped here.
   */
  async #verify(exec: Exec): Promise<void> {
    const local = this.#local;
    if (this.#unverified.size === 0 || local === undefined) return;
    const ids = [...this.#unverified].slice(0, VERIFY_LIMIT);
    const batch: ObjectInfo[] = [];
    for (const id of ids) {
      const digest = await local.digest(id);
      const info = local.get(id);
      if (info !== undefined) batch.push(digest === undefined ? info : { ...info, digest });
    }
    for (const id of ids) this.#unverified.delete(id);
    try {
      for (const objects of this.#byShard(batch, (info) => info.id).values()) {
        await this.#register(exec, objects, true);
      }
    } catch (error) {
      for (const { id } of batch) this.#unverified.add(id);
      throw error;
    }
  }

  #dropped(local: ObjectInfo, why: string): void {
    this.#counters.conflicts++;
    this.#log?.warn(
      `Dropped the copy of object ${local.id} held here (${describeContent(local)}): ${why}`,
    );
  }

  /**
   * Registers copies held here, all on one shard, as holders; `join`: only of
   * objects Redis records.
   */
  async #register(exec: Exec, batch: readonly ObjectInfo[], join: boolean): Promise<void> {
    const shard = shardOf(batch[0]!.id, this.#shards);
    const statuses = await exec(
      SCRIPTS.register,
      [
        ...this.#shardKeys[shard]!,
        ...batch.map((info) => objectKey(this.namespace, shard, info.id)),
      ],
      [
        String(this.#clock.now()),
        this.node,
        this.#address,
        JSON.stringify(batch.map((info) => sealedEntry(info, join))),
      ],
    ) as string[];
    batch.forEach((info, i) => {
      const { id } = info;
      switch (statuses[i]) {
        case "CONFLICT":
          this.#local?.forfeit(id);
          this.#granted.delete(id);
          this.#dropped(info, "Redis records other bytes under that id");
          break;
        case "GONE":
          // Deleted (or reaped) since it was found unlisted: the copy here goes too.
          this.#local?.forfeit(id);
          this.#log?.info(`Dropped the copy of object ${id} held here: Redis no longer has it`);
          break;
        case "PENDING":
        case "CREATING":
          this.#unverified.add(id);
      }
    });
  }

  /** Ends in Redis what ended here while it was away, and stores the leases it lacks. */
  async #reconcile(exec: Exec): Promise<void> {
    const pending = [...this.#pendingEnds.values()];
    await this.#end(exec, "drop", pending, this.#clock.now());
    for (const lease of pending) this.#pendingEnds.delete(lease.id);
    const now = this.#clock.now();
    const missing = [...this.#own.values()].filter((own) =>
      !own.stored && (own.record.expiresAt === undefined || own.record.expiresAt > now)
    );
    for (const [shard, leases] of this.#byShard(missing, (own) => own.record.objectId)) {
      for (const batch of chunks(leases)) await this.#restore(exec, shard, batch, now);
    }
  }

  /** Puts leases of this node, all on one shard, back into Redis. */
  async #restore(exec: Exec, shard: number, batch: OwnLease[], now: number): Promise<void> {
    const keys = [...this.#shardKeys[shard]!];
    const entries = batch.map(({ record, creating }) => {
      keys.push(
        objectKey(this.namespace, shard, record.objectId),
        leaseKey(this.namespace, shard, record.id),
      );
      return [
        record.id,
        record.objectId,
        record.access,
        ...expiryArgs(record, now),
        creating === undefined ? false : creatingArgs(creating),
      ];
    });
    const statuses = await exec(SCRIPTS.restore, keys, [
      String(now),
      this.node,
      JSON.stringify(entries),
    ]) as string[];
    batch.forEach((own, i) => {
      if (statuses[i] === "OK") own.stored = true;
      if (statuses[i] === "TAKEN") {
        this.#log?.warn(
          `Cannot restore lease ${own.record.id}: another object has the id ${own.record.objectId}`,
        );
      }
    });
  }
}

/** Whether a lease has a TTL, as the scripts take it: they look for it in one place. */
function timed(lease: LeaseRecord): string {
  return lease.ttl === undefined ? "0" : "1";
}

/** The object id of a lease without a TTL as Redis keeps it: `ACCESS:objectId`. */
function objectOfLease(value: string): string {
  return value.slice(value.indexOf(":") + 1);
}

/** Whether Redis lists `node` as a holder of the object. */
function listed(info: ObjectInfo, node: string): boolean {
  for (const holder of info.holders ?? []) if (holder.node === node) return true;
  return false;
}

function describeContent(info: ObjectInfo): string {
  return `${info.size} bytes, digest ${info.digest ?? "unknown"}`;
}

function ended(lease: LeaseRecord, removed: ObjectInfo | undefined): LeaseEnd {
  return removed === undefined ? { lease } : { lease, removed };
}

/** A live lease that Redis no longer has. */
function gone(lease: LeaseRecord): LeaseExpiredError {
  return new LeaseExpiredError(`Lease ${lease.id} on ${lease.objectId} is no longer in the store`);
}

function disagreement(script: Script, status: string): InternalError {
  return new InternalError(
    `Redis script ${script.name} answered ${status}, which the lifecycle rules do not explain`,
  );
}

function* chunks<T>(items: readonly T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += BATCH) yield items.slice(i, i + BATCH);
}

function defaultNode(): string {
  let host = "node";
  try {
    host = Deno.hostname();
  } catch {
    // No --allow-sys: the pid alone still tells daemons on one host apart.
  }
  return `${host}-${Deno.pid}`;
}

function checkName(value: string, what: string): string {
  // deno-lint-ignore no-control-regex
  if (typeof value !== "string" || value.length === 0 || /[\u0000-\u0020\u007f]/.test(value)) {
    throw new InvalidArgumentError(
      `Invalid ${what}: expected a non-empty string without spaces or control characters`,
    );
  }
  return value;
}

function checkCount(value: number, what: string, min: number, endless: boolean): number {
  if (endless && value === Infinity) return value;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`Invalid ${what}: expected an integer of at least ${min}`);
  }
  return value;
}
