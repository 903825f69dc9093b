/** Putting Redis back in line with this node after an outage or a state loss: re-registration and reconciliation. */
import type { Clock } from "../../core/clock.ts";
import type { LeaseRecord, LocalObjects } from "../../core/lease_store.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { creatingArgs, expiryArgs, sealedEntry } from "./codec.ts";
import type { Exec, RedisLogger } from "./connection.ts";
import type { GrantedVersions } from "./granted_versions.ts";
import type { LeaseTable, OwnLease } from "./lease_table.ts";
import { describeContent } from "./replies.ts";
import { leaseKey, objectKey, shardOf } from "./keys.ts";
import { SCRIPTS } from "./scripts.ts";
import { byShard, chunks, type ShardCalls } from "./shard_calls.ts";

/** Objects whose copy here is checked against Redis per tick, at most. */
const VERIFY_LIMIT = 100;

/** What {@link Reconciler} shares with the store it serves. */
export interface ReconcilerOptions {
  readonly namespace: string;
  readonly node: string;
  /** The calls about many leases or objects, shard by shard. */
  readonly calls: ShardCalls;
  readonly address: string;
  readonly clock: Clock;
  readonly log: RedisLogger | undefined;
  /** The leases this node granted, by id: the store's own map. */
  readonly own: LeaseTable;
  /** The last version of an object a grant returned, by id: the store's own map. */
  readonly granted: GrantedVersions;
}

/**
 * What this node holds, and what Redis should know of it: the work that puts
 * Redis back in line when it lost or missed this node's state.
 */
export class Reconciler {
  /** The copies held here, once attached. */
  local: LocalObjects | undefined;
  /** Leases ended or renewed here while Redis was away, whose copy there must go. */
  readonly pendingEnds = new Map<string, LeaseRecord>();
  /** Ids of copies held here that Redis does not list as this node's yet: checked at each tick. */
  readonly unverified = new Set<string>();
  /** Copies held here dropped because Redis records other bytes under their id. */
  conflicts = 0;
  readonly #namespace: string;
  readonly #node: string;
  readonly #shards: number;
  readonly #shardKeys: readonly string[][];
  /** The epoch of each shard as this node last saw it: another one means the shard lost its state. */
  readonly #epochs: (string | undefined)[];
  readonly #address: string;
  readonly #clock: Clock;
  readonly #log: RedisLogger | undefined;
  readonly #own: LeaseTable;
  readonly #granted: GrantedVersions;
  readonly #calls: ShardCalls;

  constructor(options: ReconcilerOptions) {
    this.#namespace = options.namespace;
    this.#node = options.node;
    this.#shards = options.calls.count;
    this.#shardKeys = options.calls.keys;
    this.#epochs = new Array(options.calls.count).fill(undefined);
    this.#address = options.address;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#own = options.own;
    this.#granted = options.granted;
    this.#calls = options.calls;
  }

  /** Puts this node's objects and leases back into a Redis that lost them. */
  async registerAgain(exec: Exec, beat: string): Promise<void> {
    this.#log?.warn(
      beat === "TAKEN"
        ? `Node ${this.#node} was claimed by another daemon with the same node id: registering again`
        : `Redis lost the state of node ${this.#node} (it restarted empty, or other nodes took ` +
          `this one for dead): registering its objects and leases again`,
    );
    this.#granted.clear();
    this.#epochs.fill(undefined);
    for (
      const objects of byShard(this.#shards, this.local?.list() ?? [], (info) => info.id).values()
    ) {
      for (const batch of chunks(objects)) await this.register(exec, batch, false);
    }
    for (const own of this.#own.values()) own.stored = false;
  }

  /** Remembers the epoch of an object's shard from a version, when not known yet. */
  learnEpoch(objectId: string, version: string): void {
    const shard = shardOf(objectId, this.#shards);
    this.#epochs[shard] ??= version.slice(0, version.indexOf(".")) || undefined;
  }

  /**
   * Registers again the objects and leases held here on each shard that lost
   * its state since this node last looked (on a cluster, a master restarted
   * empty while the one keeping node liveness stayed up).
   */
  async checkEpochs(exec: Exec): Promise<void> {
    const held = byShard(this.#shards, this.local?.list() ?? [], (info) => info.id);
    const leases = byShard(this.#shards, [...this.#own.values()], (own) => own.record.objectId);
    let lost = false;
    for (const shard of new Set([...held.keys(), ...leases.keys()])) {
      const now = String(this.#clock.now());
      const epoch = await exec(SCRIPTS.epoch, this.#shardKeys[shard]!, [now, this.#node]) as string;
      const seen = this.#epochs[shard];
      this.#epochs[shard] = epoch;
      if (seen === undefined || seen === epoch) continue;
      const objects = held.get(shard) ?? [];
      this.#log?.warn(
        `Redis lost shard ${shard} of namespace ${this.#namespace}: registering the ` +
          `${objects.length} objects and ${leases.get(shard)?.length ?? 0} leases held here again`,
      );
      lost = true;
      this.#granted.clear();
      for (const batch of chunks(objects)) await this.register(exec, batch, false);
      for (const own of leases.get(shard) ?? []) own.stored = false;
    }
    if (lost) await this.reconcile(exec);
  }

  /**
   * Checks copies held here that Redis does not list as this node's against
   * the record under their id, with their digest (computed here if need be):
   * the same bytes join as holder, other bytes are dropped here.
   */
  async verify(exec: Exec): Promise<void> {
    const local = this.local;
    if (this.unverified.size === 0 || local === undefined) return;
    const ids = [...this.unverified].slice(0, VERIFY_LIMIT);
    const batch: ObjectInfo[] = [];
    for (const id of ids) {
      const digest = await local.digest(id);
      const info = local.get(id);
      if (info !== undefined) batch.push(digest === undefined ? info : { ...info, digest });
    }
    for (const id of ids) this.unverified.delete(id);
    try {
      for (const objects of byShard(this.#shards, batch, (info) => info.id).values()) {
        await this.register(exec, objects, true);
      }
    } catch (error) {
      for (const { id } of batch) this.unverified.add(id);
      throw error;
    }
  }

  dropped(local: ObjectInfo, why: string): void {
    this.conflicts++;
    this.#log?.warn(
      `Dropped the copy of object ${local.id} held here (${describeContent(local)}): ${why}`,
    );
  }

  /**
   * Registers copies held here, all on one shard, as holders; `join`: only of
   * objects Redis records.
   */
  async register(exec: Exec, batch: readonly ObjectInfo[], join: boolean): Promise<void> {
    const shard = shardOf(batch[0]!.id, this.#shards);
    const statuses = await exec(
      SCRIPTS.register,
      [
        ...this.#shardKeys[shard]!,
        ...batch.map((info) => objectKey(this.#namespace, shard, info.id)),
      ],
      [
        String(this.#clock.now()),
        this.#node,
        this.#address,
        JSON.stringify(batch.map((info) => sealedEntry(info, join))),
      ],
    ) as string[];
    batch.forEach((info, i) => {
      const { id } = info;
      switch (statuses[i]) {
        case "CONFLICT":
          this.local?.forfeit(id);
          this.#granted.delete(id);
          this.dropped(info, "Redis records other bytes under that id");
          break;
        case "GONE":
          // Deleted (or reaped) since it was found unlisted: the copy here goes too.
          this.local?.forfeit(id);
          this.#log?.info(`Dropped the copy of object ${id} held here: Redis no longer has it`);
          break;
        case "PENDING":
        case "CREATING":
          this.unverified.add(id);
      }
    });
  }

  /** Ends in Redis what ended here while it was away, and stores the leases it lacks. */
  async reconcile(exec: Exec): Promise<void> {
    const pending = [...this.pendingEnds.values()];
    await this.#calls.end(exec, "drop", pending, this.#clock.now());
    for (const lease of pending) this.pendingEnds.delete(lease.id);
    const now = this.#clock.now();
    const missing = [...this.#own.values()].filter((own) =>
      !own.stored && (own.record.expiresAt === undefined || own.record.expiresAt > now)
    );
    for (const [shard, leases] of byShard(this.#shards, missing, (own) => own.record.objectId)) {
      for (const batch of chunks(leases)) await this.restore(exec, shard, batch, now);
    }
  }

  /** Puts leases of this node, all on one shard, back into Redis. */
  async restore(exec: Exec, shard: number, batch: OwnLease[], now: number): Promise<void> {
    const keys = [...this.#shardKeys[shard]!];
    const entries = batch.map(({ record, creating }) => {
      keys.push(
        objectKey(this.#namespace, shard, record.objectId),
        leaseKey(this.#namespace, shard, record.id),
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
      this.#node,
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
