/**
 * A peer's list in put order, with the objects stored beside it and not
 * taken in yet among its own (see `PutsBeside.deferAdoption`), without
 * taking any in.
 *
 * @module
 */
import type { Holding } from "./holding.ts";
import type { ObjectInfo } from "./object.ts";
import type { DeferredAdoption } from "./peer.ts";

/**
 * `infos` (the lease store's list, in the order it added them) and every
 * waiting object of `deferred`, in put order (each holding's `order`, each
 * record's). The lease store's order is put order unless objects were taken
 * in from beside after others were put (`unordered`): then they are sorted
 * back. An info without a holding here keeps its place after the one before.
 *
 * @returns The list, and whether the lease store's order was put order.
 */
export function listInPutOrder(
  infos: ObjectInfo[],
  objects: ReadonlyMap<string, Holding>,
  deferred: readonly DeferredAdoption[],
  unordered: boolean,
): { list: ObjectInfo[]; inOrder: boolean } {
  const waiting = deferred.filter((one) => one.objects > 0);
  if (waiting.length === 0 && !unordered) return { list: infos, inOrder: true };
  const orders = new Float64Array(infos.length);
  let inOrder = true;
  let last = 0;
  for (let i = 0; i < infos.length; i++) {
    const order = objects.get(infos[i]!.id)?.order ?? last;
    if (order < last) inOrder = false;
    else last = order;
    orders[i] = order;
  }
  let own = infos;
  let ownOrders = orders;
  if (!inOrder) {
    const index = Array.from(infos, (_, i) => i).sort((a, b) => orders[a]! - orders[b]! || a - b);
    own = index.map((i) => infos[i]!);
    ownOrders = Float64Array.from(index, (i) => orders[i]!);
  }
  if (waiting.length === 0) return { list: own, inOrder };
  const at = waiting.map((one) => one.next(-1));
  const list: ObjectInfo[] = [];
  let next = 0;
  for (;;) {
    // The oldest waiting record, of whichever table holds it.
    let pick = -1;
    for (let k = 0; k < waiting.length; k++) {
      if (at[k]! >= 0 && (pick < 0 || waiting[k]!.order(at[k]!) < waiting[pick]!.order(at[pick]!))) {
        pick = k;
      }
    }
    if (pick < 0) break;
    const table = waiting[pick]!;
    const order = table.order(at[pick]!);
    while (next < own.length && ownOrders[next]! < order) list.push(own[next++]!);
    list.push(table.infoAt(at[pick]!));
    at[pick] = table.next(at[pick]!);
  }
  while (next < own.length) list.push(own[next++]!);
  return { list, inOrder };
}
