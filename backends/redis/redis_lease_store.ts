/**
 * RedisLeaseStore, one idea: the {@link LeaseStore} operations, each one
 * script call whose reply is read through the lifecycle checks of
 * `core/lifecycle.ts` (grants and releases of READ and WRITE leases share a
 * call with the others of their turn). The parts it wires together live
 * apart: the connection (`connection.ts`, `link.ts`, `resp_socket.ts`), the
 * scripts (`scripts.ts`), the batches of the hot path (`use_batches.ts`),
 * shard calls, heartbeat, reconciliation, read failover, the node registry
 * and the lease table.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import { systemClock } from "../../core/clock.ts";
import { AlreadyExistsError, StoreUnavailableError } from "../../core/errors.ts";
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
import {
  cursorAfter,
  type ListCursor,
  MAX_CURSOR_SHARDS,
  type Placed,
} from "../../core/list_page.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { creatingArgs, decodeObject, expiryArgs, type Fields, versionOf } from "./codec.ts";
import { type Exec, RedisConnection, type RedisLogger } from "./connection.ts";
import { isClusterUrl } from "./link.ts";
import { LATE } from "./deadline.ts";
import { ReadFailover } from "./read_failover.ts";
import { Heartbeat } from "./heartbeat.ts";
import { NodeRegistry } from "./node_registry.ts";
import { GrantedVersions } from "./granted_versions.ts";
import { LeaseTable } from "./lease_table.ts";
import { ListAfter } from "./list_after.ts";
import { Reconciler } from "./reconciliation.ts";
import {
  checkCount,
  checkName,
  defaultNode,
  type RedisLeaseStoreOptions,
} from "./redis_options.ts";
import {
  describeContent,
  disagreement,
  ended,
  gone,
  listed,
  objectOf,
  type Reply,
  statusOf,
  timed,
  type UseReply,
} from "./replies.ts";
import { nodeLeasesKey, shardOf } from "./keys.ts";
import { type Script, SCRIPTS } from "./scripts.ts";
import { ShardCalls } from "./shard_calls.ts";
import { UseBatches } from "./use_batches.ts";

/** Objects a read of {@link RedisLeaseStore.list} takes at a time. */
const LIST_BATCH = 5_000;

/**
 * Leases and the object directory in Redis, shared by every daemon on one
 * namespace; the bytes stay on the nodes that hold them.
 *
 * Every state change is one Lua script applying the rules of
 * `core/lifecycle.ts`, so daemons racing on one id agree; a refusal comes
 * back as an error code, and the error is rebuilt here by running the same
 * lifecycle check on the state the script saw. Grants and releases of READ
 * and WRITE leases made in one turn of the event loop go to Redis together,
 * one script call per shard, each checked as if alone. The sealed objects of
 * the namespace, with their holders, are the directory that `list` and
 * `stat` answer from on every node. Objects are listed in put order, one
 * order for every node, a page reading only its own part (see
 * {@link RedisLeaseStore.listAfter}).
 *
 * Redis Cluster: with a `redis+cluster://` URL the namespace is spread over
 * `shards` hash slots by object id; every script touches keys of one slot
 * only, all passed in KEYS (see `scripts.ts`). A call about one object costs
 * the same as on a standalone Redis; a page of `list` reads each shard's
 * share of it, `counts` makes one call per shard, and reaping a dead node
 * one pass per shard.
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
  readonly #calls: ShardCalls;
  readonly #address: string;
  readonly #clock: Clock;
  readonly #log: RedisLogger | undefined;
  readonly #registry: NodeRegistry;
  readonly #connection: RedisConnection;
  readonly #own = new LeaseTable();
  /** The namespace's objects as last counted (see {@link RedisLeaseStore.counts}). */
  #objects: number | undefined;
  /** The last version of an object a grant returned, by id. */
  readonly #granted = new GrantedVersions();
  readonly #reconciler: Reconciler;
  readonly #pages: ListAfter;
  readonly #failover: ReadFailover;
  #localReads = 0;
  readonly #gated: Exec;
  readonly #uses: UseBatches;
  #local: LocalObjects | undefined;
  readonly #heartbeat: Heartbeat;
  #closed = false;

  private constructor(options: RedisLeaseStoreOptions) {
    this.namespace = checkName(options.namespace ?? "packice", "namespace");
    this.node = checkName(options.node ?? defaultNode(), "node id");
    const url = options.url ?? "redis://127.0.0.1:6379/0";
    const shards = options.shards ?? (isClusterUrl(url) ? 64 : 1);
    // As many as a Redis Cluster has hash slots: more would share one.
    this.#shards = checkCount(shards, "shards", 1, false, MAX_CURSOR_SHARDS);
    this.#calls = new ShardCalls(this.namespace, this.node, this.#shards);
    this.#address = options.address ?? "";
    this.#clock = options.clock ?? systemClock;
    this.#registry = new NodeRegistry({
      namespace: this.namespace,
      node: this.node,
      shards: this.#shards,
      address: this.#address,
      clock: this.#clock,
      liveness: checkCount(options.liveness ?? 15_000, "liveness", 30, false),
    });
    this.#log = options.log;
    this.#reconciler = new Reconciler({
      namespace: this.namespace,
      node: this.node,
      calls: this.#calls,
      address: this.#address,
      clock: this.#clock,
      log: this.#log,
      own: this.#own,
      granted: this.#granted,
    });
    this.#pages = new ListAfter(this.namespace, this.node, this.#calls, () => this.#clock.now());
    this.#failover = new ReadFailover(
      checkCount(options.readFailover ?? 200, "readFailover", 1, false),
      this.#log,
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
      onReady: async (first, exec) => {
        await this.#heartbeat.onReady(first, exec);
        this.#failover.degraded = false;
      },
    });
    this.#gated = (script, keys, args) => this.#connection.run(script, keys, args);
    this.#uses = new UseBatches(this.#gated, this.#calls, this.namespace, this.node);
    this.#heartbeat = new Heartbeat({
      namespace: this.namespace,
      registry: this.#registry,
      reconciler: this.#reconciler,
      log: this.#log,
      exec: this.#gated,
      available: () => this.#connection.available,
    });
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
      await store.counts();
    } catch (error) {
      await store.#connection.close();
      throw error;
    }
    store.#heartbeat.start();
    return store;
  }

  /** Whether Redis is reachable now; when not, calls that need it fail fast. */
  get available(): boolean {
    return this.#connection.available;
  }

  attach(local: LocalObjects): void {
    this.#local = local;
    this.#reconciler.local = local;
  }

  async create(info: ObjectInfo, lease: LeaseRecord): Promise<void> {
    const now = this.#clock.now();
    // An object whose creator's node may be dead: asked, then replaced if it is.
    let dead = "";
    for (;;) {
      const [status, node] = await this.#calls.onObject(
        this.#gated,
        SCRIPTS.create,
        info.id,
        now,
        [lease.id],
        [info.id, lease.id, ...expiryArgs(lease, now), ...creatingArgs(info), dead],
        dead === "" ? [] : [nodeLeasesKey(this.namespace, shardOf(info.id, this.#shards), dead)],
      ) as Reply;
      if (status === "ASK" && node !== dead && !await this.#registry.alive(this.#gated, node!)) {
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
    if (held !== undefined && this.#failover.degraded) return this.#readHere(lease, held);
    const cached = this.#granted.get(objectId);
    let reply: UseReply;
    try {
      const call = this.#uses.grant(objectId, lease, now, cached?.version ?? "");
      if (held === undefined) {
        reply = await call;
      } else {
        const answer = await this.#failover.deadline.within(call);
        if (answer === LATE) {
          this.#failover.slow(call);
          return this.#readHere(lease, held);
        }
        reply = answer;
      }
    } catch (error) {
      if (held === undefined || !(error instanceof StoreUnavailableError)) throw error;
      return this.#readHere(lease, held);
    }
    const status = statusOf(reply);
    const info = objectOf(objectId, reply);
    if (status !== "OK") {
      checkGrant(objectId, info, lease.access);
      throw disagreement(SCRIPTS.uses, status);
    }
    this.#own.set(lease.id, { record: this.#stamp(lease), creating: undefined, stored: true });
    if (info === undefined) return cached!.info;
    this.#granted.remember(objectId, versionOf(reply as Reply, 1), info);
    // A copy here that Redis does not list is checked against its record at the next tick.
    if (held !== undefined && !listed(info, this.node)) this.#reconciler.unverified.add(objectId);
    return info;
  }

  /**
   * A READ of a sealed object held here, while Redis is away or slow: the
   * lease is kept on this node and put into Redis when it answers again.
   */
  #readHere(lease: LeaseRecord, held: ObjectInfo): ObjectInfo {
    this.#own.set(lease.id, { record: this.#stamp(lease), creating: undefined, stored: false });
    this.#localReads++;
    return held;
  }

  lease(leaseId: string): Promise<LeaseRecord> {
    try {
      return Promise.resolve(this.#own.owned(leaseId, this.#clock.now()).record);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async seal(leaseId: string, sealed: SealPatch): Promise<ObjectInfo> {
    const own = this.#own.owned(leaseId, this.#clock.now());
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
        this.#reconciler.learnEpoch(own.record.objectId, versionOf(fields));
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
    const own = this.#own.owned(leaseId, this.#clock.now());
    checkDiscard(own.record);
    const now = this.#clock.now();
    const [status, ...fields] = await this.#onLease(SCRIPTS.discard, own.record, now) as Reply;
    switch (status) {
      case "OK": {
        this.#own.forget(leaseId, false);
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
    const now = this.#clock.now();
    const own = this.#own.owned(leaseId, now);
    if (!own.stored || (this.#failover.degraded && own.record.access === Access.READ)) {
      // Granted or renewed while Redis was away, or not put back yet: it ends here,
      // and in Redis (which may have it by now, or soon) at the next reconciliation.
      this.#own.forget(leaseId, false);
      this.#reconciler.pendingEnds.set(leaseId, own.record);
      return ended(own.record, own.creating);
    }
    let reply: UseReply;
    try {
      const { record } = own;
      reply = await (record.access === Access.CREATE
        ? this.#onLease(SCRIPTS.release, record, now) as Promise<Reply>
        : this.#uses.release(record, now));
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || own.record.access !== Access.READ) {
        throw error;
      }
      // A read ends here while Redis is away; Redis hears of it when it is back.
      this.#own.forget(leaseId, false);
      this.#reconciler.pendingEnds.set(leaseId, own.record);
      return { lease: own.record };
    }
    const status = statusOf(reply);
    switch (status) {
      case "OK":
      // Redis lost the lease (its expiry ran ahead of this clock, or this node was
      // taken for dead): a release ends it here all the same.
      case "UNKNOWN_LEASE":
        this.#own.forget(leaseId, false);
        return ended(own.record, objectOf(own.record.objectId, reply) ?? own.creating);
      case "LEASE_EXPIRED":
        checkLive(own.record, now);
    }
    throw disagreement(
      own.record.access === Access.CREATE ? SCRIPTS.release : SCRIPTS.uses,
      status,
    );
  }

  async renew(leaseId: string, ttl: number, now: number): Promise<LeaseRecord> {
    const own = this.#own.owned(leaseId, this.#clock.now());
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
        this.#reconciler.pendingEnds.set(leaseId, own.record);
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
      await this.#calls.end(this.#gated, "expire", stored, now, replies);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
    }
    const ends: LeaseEnd[] = [];
    for (const own of due) {
      const { id, objectId } = own.record;
      const reply = replies.get(id);
      if (reply?.[0] === "LIVE") continue;
      // Not reached (Redis went away, or not stored yet): it ends here, and there when Redis is back.
      if (reply === undefined) this.#reconciler.pendingEnds.set(id, own.record);
      this.#own.forget(id, true);
      ends.push(ended(own.record, decodeObject(objectId, reply?.slice(1) ?? []) ?? own.creating));
    }
    return ends;
  }

  async annotate(objectId: string, patch: AnnotatePatch): Promise<void> {
    const fields: string[] = [];
    if (patch.digest !== undefined) fields.push("digest", patch.digest);
    if (patch.tier !== undefined) fields.push("tier", patch.tier);
    if (fields.length === 0) return;
    await this.#calls.onObject(
      this.#gated,
      SCRIPTS.annotate,
      objectId,
      this.#clock.now(),
      [],
      fields,
    );
  }

  async stat(objectId: string): Promise<ObjectInfo | undefined> {
    const held = this.#local?.get(objectId);
    if (held !== undefined && this.#failover.degraded) return held;
    let fields: Fields;
    try {
      const call = this.#calls.onObject(
        this.#gated,
        SCRIPTS.get,
        objectId,
        this.#clock.now(),
        [],
        [],
      );
      const answer = held === undefined ? await call : await this.#failover.deadline.within(call);
      if (answer === LATE) {
        this.#failover.slow(call);
        return held;
      }
      [fields] = answer as [Fields];
    } catch (error) {
      if (held === undefined || !(error instanceof StoreUnavailableError)) throw error;
      return held;
    }
    return decodeObject(objectId, fields);
  }

  /** Every object of the namespace, in put order (see {@link RedisLeaseStore.listAfter}). */
  async list(): Promise<ObjectInfo[]> {
    const all: ObjectInfo[] = [];
    let after: ListCursor | undefined;
    for (;;) {
      const page = await this.listAfter(after, LIST_BATCH);
      for (const { info } of page) all.push(info);
      const last = page[page.length - 1];
      if (page.length < LIST_BATCH || last === undefined) return all;
      after = cursorAfter(last);
    }
  }

  /**
   * The objects of the namespace in put order, from the first after
   * `after`: the same order on every node, each object's place given in
   * Redis when it was put (see `list_after.ts`). A page reads what it
   * returns, not the whole namespace. Each object comes with the cursor of
   * a page that ends at it (`Placed.next`): its place, id and a check of
   * this store, the same length for any number of shards; on a namespace
   * of shards, a page first brings the shards it read to their end up to
   * its last place, so that a put on a master whose clock is behind is not
   * passed over.
   *
   * @param after Where to start: the cursor of the last object of the page
   *   before (`cursorAfter`); from the first when undefined.
   * @param count The most objects to return.
   * @returns Up to `count` objects with their places; fewer only at the end.
   * @throws {RangeError} When `count` is not a positive integer.
   * @throws {InvalidArgumentError} When another store made `after` (its
   *   check tells), or it holds positions of another number of shards than
   *   the namespace's.
   * @throws {StoreUnavailableError} When Redis cannot be reached.
   *
   * @example Two pages of 100
   * ```ts ignore
   * import { cursorAfter, RedisLeaseStore } from "@packice/packice";
   * await using leases = await RedisLeaseStore.connect({ url: "redis://127.0.0.1:6379/0" });
   * const first = await leases.listAfter(undefined, 100);
   * const last = first.at(-1);
   * if (last !== undefined) await leases.listAfter(cursorAfter(last), 100);
   * ```
   */
  listAfter(after: ListCursor | undefined, count: number): Promise<Placed[]> {
    if (!Number.isSafeInteger(count) || count < 1) {
      return Promise.reject(
        new RangeError(`Cannot list objects: count must be a positive integer, got ${count}`),
      );
    }
    return this.#pages.read(this.#gated, after, count);
  }

  /**
   * The namespace's objects and this node's leases. While Redis is away, the
   * objects counted when it last answered: nothing puts or deletes meanwhile,
   * and a daemon's status and metrics (`directory_available` 0 among them)
   * stay readable through the outage.
   */
  async counts(): Promise<{ objects: number; leases: number }> {
    try {
      this.#objects = await this.#calls.countObjects(this.#gated, this.#clock.now());
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || this.#objects === undefined) throw error;
    }
    return { objects: this.#objects, leases: this.#own.size };
  }

  conflict(local: ObjectInfo, recorded: ObjectInfo): void {
    this.#reconciler.dropped(
      local,
      `Redis records other bytes under that id (${describeContent(recorded)})`,
    );
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
      directory_conflicts_total: this.#reconciler.conflicts,
      directory_local_reads_total: this.#localReads,
      directory_unverified_objects: this.#reconciler.unverified.size,
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
    await this.#heartbeat.stop();
    this.#failover.close();
    if (this.#connection.available) {
      try {
        const records = [...this.#own.values()].map((own) => own.record);
        await this.#calls.end(this.#gated, "drop", records, this.#clock.now());
        await this.#registry.reap(this.#gated, this.node);
      } catch (error) {
        this.#log?.warn(`Cannot leave namespace ${this.namespace}: ${(error as Error).message}`);
      }
    }
    this.#own.clear();
    this.#reconciler.pendingEnds.clear();
    this.#granted.clear();
    this.#reconciler.unverified.clear();
    await this.#connection.close();
  }

  /** Same as {@link RedisLeaseStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Runs a shard script about one lease of this node. */
  #onLease(
    script: Script,
    lease: LeaseRecord,
    now: number,
    args: readonly string[] = [],
  ): Promise<unknown> {
    return this.#calls.onObject(this.#gated, script, lease.objectId, now, [lease.id], [
      lease.id,
      lease.access,
      lease.objectId,
      timed(lease),
      ...args,
    ]);
  }

  #stamp(lease: LeaseRecord): LeaseRecord {
    return { ...lease, node: this.node };
  }
}
