/** What cache mode drops to make room: idle sealed objects, least recently read first. */
import type { Holding } from "./holding.ts";
import type { Lru } from "./lru.ts";
import type { ObjectInfo } from "./object.ts";
import type { DeferredAdoption } from "./peer.ts";

/** An object stored beside the peer and never taken in, to drop: never read, always idle. */
export interface WaitingVictim {
  /** The table that holds its record. */
  readonly deferred: DeferredAdoption;
  readonly info: ObjectInfo;
}

/**
 * The idle sealed objects to drop so that `needed` bytes are freed, least
 * recently used first: the holdings of `recency` (by `used`, the place of
 * their last seal or read in the peer's one order), those of `untouched`
 * (taken in from beside and never read: by their put's place) and the
 * objects waiting in `deferred` (by their put's place, never read since),
 * merged by that place; none when dropping all of them would not make room.
 * `current`: the holding each object id stands for now.
 */
export function evictionVictims(
  needed: number,
  recency: Lru<Holding>,
  untouched: ReadonlySet<Holding>,
  current: ReadonlyMap<string, Holding>,
  deferred: readonly DeferredAdoption[],
): Array<Holding | WaitingVictim> {
  const victims: Array<Holding | WaitingVictim> = [];
  let found = 0;
  let steps = recency.size;
  const held = recency[Symbol.iterator]();
  let holding: Holding | undefined = steps > 0 ? held.next().value : undefined;
  // Few: only what was taken in without a read (a put of its id, a lease not a read).
  const early = [...untouched].sort((a, b) => a.used - b.used);
  let next = 0;
  const at = deferred.map((one) => one.objects > 0 ? one.next(-1) : -1);
  const idle = (candidate: Holding) => {
    if (
      candidate.refs === 0 && candidate.sealed && !candidate.removed &&
      current.get(candidate.info.id) === candidate
    ) {
      victims.push(candidate);
      found += candidate.info.size;
    }
  };
  while (found < needed) {
    let pick = -1;
    let oldest = Infinity;
    for (let k = 0; k < deferred.length; k++) {
      if (at[k]! < 0) continue;
      const order = deferred[k]!.order(at[k]!);
      if (order < oldest) [pick, oldest] = [k, order];
    }
    const first = early[next];
    if (holding !== undefined && holding.used < oldest && !(first && first.used < holding.used)) {
      idle(holding);
      holding = --steps > 0 ? held.next().value : undefined;
    } else if (first !== undefined && first.used < oldest) {
      idle(first);
      next++;
    } else if (pick >= 0) {
      const table = deferred[pick]!;
      victims.push({ deferred: table, info: table.infoAt(at[pick]!) });
      found += table.size(at[pick]!);
      at[pick] = table.next(at[pick]!);
    } else {
      break;
    }
  }
  return found < needed ? [] : victims;
}
