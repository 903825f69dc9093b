/** What cache mode drops to make room: idle sealed objects, least recently read first. */
import type { BlobStore } from "./blob_store.ts";
import type { Holding } from "./holding.ts";
import type { Lru } from "./lru.ts";

/**
 * The idle sealed holdings to drop, least recently read first, so that `size`
 * more bytes fit in `blobs`; none when dropping all of them would not make
 * room. `current`: the holding each object id stands for now.
 */
export function evictionVictims(
  size: number,
  blobs: Pick<BlobStore, "capacity" | "used">,
  recency: Lru<Holding>,
  current: ReadonlyMap<string, Holding>,
): Holding[] {
  const { capacity, used } = blobs;
  if (size > capacity) return [];
  const needed = used + size - capacity;
  const victims: Holding[] = [];
  let found = 0;
  let steps = recency.size;
  for (const holding of recency) {
    if (found >= needed || steps-- <= 0) break;
    if (
      holding.refs === 0 && holding.sealed && !holding.removed &&
      current.get(holding.info.id) === holding
    ) {
      victims.push(holding);
      found += holding.info.size;
    }
  }
  return found < needed ? [] : victims;
}
