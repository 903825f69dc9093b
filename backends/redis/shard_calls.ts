/** Script calls as the shard layout wants them: about one object, or many grouped by shard in batches. */
import type { LeaseRecord } from "../../core/lease_store.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { decodeObject, type Fields } from "./codec.ts";
import type { Exec } from "./connection.ts";
import type { Reply } from "./replies.ts";
import { leaseKey, objectKey, shardKeys, shardOf } from "./keys.ts";
import { type Script, SCRIPTS } from "./scripts.ts";

/** Entries per script call when registering, restoring, ending or reading many. */
const BATCH = 500;

/** `items` in batches of at most {@link BATCH}. */
export function* chunks<T>(items: readonly T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += BATCH) yield items.slice(i, i + BATCH);
}

/** Items grouped by the shard of their object id, among `shards`. */
export function byShard<T>(
  shards: number,
  items: readonly T[],
  idOf: (item: T) => string,
): Map<number, T[]> {
  const grouped = new Map<number, T[]>();
  for (const item of items) {
    const shard = shardOf(idOf(item), shards);
    let list = grouped.get(shard);
    if (list === undefined) grouped.set(shard, list = []);
    list.push(item);
  }
  return grouped;
}

/** The shards of one namespace as this node calls scripts on them. */
export class ShardCalls {
  /** How many shards the namespace has. */
  readonly count: number;
  /** The fixed keys of each shard, as shard scripts take them first. */
  readonly keys: readonly string[][];
  readonly #namespace: string;
  readonly #node: string;

  constructor(namespace: string, node: string, count: number) {
    this.count = count;
    this.keys = Array.from({ length: count }, (_, s) => shardKeys(namespace, s, node));
    this.#namespace = namespace;
    this.#node = node;
  }

  /**
   * Runs a shard script about one object: the keys of its shard, its own key,
   * the keys of the leases `leases` on it, then `extra` keys.
   */
  onObject(
    exec: Exec,
    script: Script,
    objectId: string,
    now: number,
    leases: readonly string[],
    args: readonly string[],
    extra: readonly string[] = [],
  ): Promise<unknown> {
    const shard = shardOf(objectId, this.count);
    const keys = [...this.keys[shard]!, objectKey(this.#namespace, shard, objectId)];
    for (const lease of leases) keys.push(leaseKey(this.#namespace, shard, lease));
    keys.push(...extra);
    return exec(script, keys, [String(now), this.#node, ...args]);
  }

  /** Ends leases of this node, shard by shard; each reply goes into `replies`, by lease id. */
  async end(
    exec: Exec,
    mode: "expire" | "drop",
    leases: readonly LeaseRecord[],
    now: number,
    replies?: Map<string, Reply>,
  ): Promise<void> {
    for (const [shard, records] of byShard(this.count, leases, (lease) => lease.objectId)) {
      for (const batch of chunks(records)) {
        const keys = [...this.keys[shard]!];
        const args = [String(now), this.#node, mode];
        for (const lease of batch) {
          keys.push(
            objectKey(this.#namespace, shard, lease.objectId),
            leaseKey(this.#namespace, shard, lease.id),
          );
          args.push(lease.id);
        }
        const out = await exec(SCRIPTS.end, keys, args) as Reply[];
        batch.forEach((lease, i) => replies?.set(lease.id, out[i]!));
      }
    }
  }

  /**
   * The ids of a shard's objects, sealed or being created, from its indexes
   * of each (not from its index by put order: see `list_after.ts`).
   */
  async idsOf(exec: Exec, shard: number, now: number): Promise<string[]> {
    const [sealed, creating] = await exec(SCRIPTS.index, this.keys[shard]!, [
      String(now),
      this.#node,
      "list",
    ]) as [string[], string[]];
    return [...sealed, ...creating];
  }

  /** The objects of a shard under `ids`, in batches; undefined for one that is gone. */
  async infosOf(
    exec: Exec,
    shard: number,
    ids: readonly string[],
    now: number,
  ): Promise<(ObjectInfo | undefined)[]> {
    const infos: (ObjectInfo | undefined)[] = [];
    for (const batch of chunks(ids)) {
      const replies = await exec(
        SCRIPTS.get,
        [...this.keys[shard]!, ...batch.map((id) => objectKey(this.#namespace, shard, id))],
        [String(now), this.#node],
      ) as Fields[];
      batch.forEach((id, i) => infos.push(decodeObject(id, replies[i]!)));
    }
    return infos;
  }

  /** How many objects the namespace has, sealed or being created. */
  async countObjects(exec: Exec, now: number): Promise<number> {
    const counts = await Promise.all(
      this.keys.map((keys) => exec(SCRIPTS.index, keys, [String(now), this.#node, "count"])),
    ) as [number, number][];
    let objects = 0;
    for (const [sealed, creating] of counts) objects += sealed + creating;
    return objects;
  }
}
