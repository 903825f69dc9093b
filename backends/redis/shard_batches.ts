/** Work on many objects or leases, grouped by shard and cut into batches of bounded size. */
import { shardOf } from "./scripts.ts";

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
