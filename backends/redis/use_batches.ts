/**
 * The hot path of the Redis lease store: grants of READ and WRITE leases,
 * and their releases, made by any callers in one turn of the event loop go
 * to Redis together, one `uses` script call per shard (see
 * `lease_scripts.ts`). Callers racing each other share one script run, its
 * keys and its round trip, where each used to cost Redis a script run of its
 * own; each caller still gets the reply about its own lease.
 *
 * @module
 */
import { InternalError } from "../../core/errors.ts";
import type { LeaseRecord } from "../../core/lease_store.ts";
import type { Exec } from "./connection.ts";
import { expiryArgs } from "./codec.ts";
import { leaseKey, objectKey, shardOf } from "./keys.ts";
import type { UseReply } from "./replies.ts";
import { SCRIPTS } from "./scripts.ts";
import type { ShardCalls } from "./shard_calls.ts";
import { gatherAtTurnEnd } from "./turn.ts";

/** Entries per script call, at most: a turn with more sends more calls, in one write. */
const MAX_ENTRIES = 256;

/** The entries of one script call, on one shard, as they are added. */
interface Batch {
  /** This node's leases without a TTL on the shard, then the keys entries name. */
  readonly keys: string[];
  /** The node, then each entry's arguments. */
  readonly args: string[];
  /** The index in `keys` (1-based, as Lua counts) of each object named so far. */
  readonly objects: Map<string, string>;
  /** How each entry's caller hears its reply, in order. */
  readonly resolves: ((reply: UseReply) => void)[];
  /** How each entry's caller hears that the call failed, in order. */
  readonly rejects: ((error: unknown) => void)[];
}

/** Grants and releases of READ and WRITE leases, gathered per shard and turn. */
export class UseBatches {
  readonly #exec: Exec;
  readonly #calls: ShardCalls;
  readonly #namespace: string;
  readonly #node: string;
  /** The batch being filled, by shard. */
  readonly #open: (Batch | undefined)[];
  /** Batches of this turn that filled up. */
  #full: Batch[] = [];
  #scheduled = false;

  /**
   * @param exec Runs the script calls.
   * @param calls The shards of the namespace, with their keys.
   * @param namespace The namespace of the keys.
   * @param node This node's id.
   */
  constructor(exec: Exec, calls: ShardCalls, namespace: string, node: string) {
    this.#exec = exec;
    this.#calls = calls;
    this.#namespace = namespace;
    this.#node = node;
    this.#open = new Array(calls.count).fill(undefined);
  }

  /**
   * Grants `lease`, READ or WRITE, on `objectId` at `now`. `version` is that
   * of the caller's copy of the object ('' for none): the reply carries the
   * object's fields only when that copy is stale (lifecycle.checkGrant).
   */
  grant(objectId: string, lease: LeaseRecord, now: number, version: string): Promise<UseReply> {
    const shard = shardOf(objectId, this.#calls.count);
    const batch = this.#batch(shard);
    let index = batch.objects.get(objectId);
    if (index === undefined) {
      batch.keys.push(objectKey(this.#namespace, shard, objectId));
      batch.objects.set(objectId, index = String(batch.keys.length));
    }
    if (lease.ttl === undefined) {
      batch.args.push("g", index, objectId, lease.id, lease.access, version);
    } else {
      batch.keys.push(leaseKey(this.#namespace, shard, lease.id));
      batch.args.push("t", index, objectId, lease.id, lease.access, version);
      batch.args.push(String(batch.keys.length), ...expiryArgs(lease, now));
    }
    return this.#entry(batch);
  }

  /**
   * Ends `lease`, READ or WRITE, at `now`: OK, UNKNOWN_LEASE or
   * LEASE_EXPIRED for a lease with a TTL; always OK for one without.
   */
  release(lease: LeaseRecord, now: number): Promise<UseReply> {
    const shard = shardOf(lease.objectId, this.#calls.count);
    const batch = this.#batch(shard);
    if (lease.ttl === undefined) {
      batch.args.push("r", lease.id);
    } else {
      batch.keys.push(leaseKey(this.#namespace, shard, lease.id));
      batch.args.push("e", String(batch.keys.length), String(now));
    }
    return this.#entry(batch);
  }

  /** The batch of `shard` to add an entry to; the first of a turn schedules the sending. */
  #batch(shard: number): Batch {
    let batch = this.#open[shard];
    if (batch !== undefined && batch.resolves.length < MAX_ENTRIES) return batch;
    if (batch !== undefined) this.#full.push(batch);
    batch = {
      keys: [this.#calls.keys[shard]![0]!],
      args: [this.#node],
      objects: new Map(),
      resolves: [],
      rejects: [],
    };
    this.#open[shard] = batch;
    if (!this.#scheduled) {
      this.#scheduled = true;
      gatherAtTurnEnd(this.#flush);
    }
    return batch;
  }

  #entry(batch: Batch): Promise<UseReply> {
    return new Promise<UseReply>((resolve, reject) => {
      batch.resolves.push(resolve);
      batch.rejects.push(reject);
    });
  }

  /** Sends the batches of this turn, each one script call. */
  readonly #flush = (): void => {
    this.#scheduled = false;
    const batches = this.#full;
    this.#full = [];
    for (let shard = 0; shard < this.#open.length; shard++) {
      const batch = this.#open[shard];
      if (batch === undefined) continue;
      batches.push(batch);
      this.#open[shard] = undefined;
    }
    for (const batch of batches) {
      this.#exec(SCRIPTS.uses, batch.keys, batch.args).then(
        (replies) => {
          const { resolves, rejects } = batch;
          if (Array.isArray(replies) && replies.length === resolves.length) {
            for (let i = 0; i < resolves.length; i++) resolves[i]!(replies[i]);
            return;
          }
          const error = new InternalError(
            `Redis script uses answered ${Array.isArray(replies) ? replies.length : "no"} ` +
              `replies for ${resolves.length} entries`,
          );
          for (const reject of rejects) reject(error);
        },
        (error) => {
          for (const reject of batch.rejects) reject(error);
        },
      );
    }
  };
}
