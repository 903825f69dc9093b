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
 * recently used first: the holdings of `recency` (by `used`, the order of
 * their last seal or read) and the objects waiting in `deferred` (by their
 * put, never read since) merged by their place in the peer's one order;
 * none when dropping all of them would not make room. `current`: the
 * holding each object id stands for now.
 */
export function evictionVictims(
  needed: number,
  recency: Lru<Holding>,
  current: ReadonlyMap<string, Holding>,
  deferred: readonly DeferredAdoption[],
): Array<Holding | WaitingVictim> {
  const victims: Array<Holding | WaitingVictim> = [];
  let found = 0;
  let steps = recency.size;
  const held = recency[Symbol.iterator]();
  let holding: Holding | undefined = steps > 0 ? held.next().value : undefined;
  const at = deferred.map((one) => one.objects > 0 ? one.next(-1) : -1);
  while (found < needed) {
    let pick = -1;
    for (let k = 0; k < deferred.length; k++) {
      if (
        at[k]! >= 0 && (pick < 0 || deferred[k]!.order(at[k]!) < deferred[pick]!.order(at[pick]!))
      ) {
        pick = k;
      }
    }
    if (holding !== undefined && (pick < 0 || holding.used < deferred[pick]!.order(at[pick]!))) {
      if (
        holding.refs === 0 && holding.sealed && !holding.removed &&
        current.get(holding.info.id) === holding
      ) {
        victims.push(holding);
        found += holding.info.size;
      }
      holding = --steps > 0 ? held.next().value : undefined;
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
