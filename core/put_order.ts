/**
 * A peer's list in put order, with the objects stored beside it and not
 * taken in yet among its own (see `PutsBeside.deferAdoption`), without
 * taking any in, and without stopping the event loop for long.
 *
 * @module
 */
import type { Holding } from "./holding.ts";
import type { ObjectInfo } from "./object.ts";
import type { DeferredAdoption, WaitingList } from "./peer.ts";

/** Infos of waiting objects made between two turns of the event loop. */
const SLICE = 16_384;

/**
 * `infos` (the lease store's list, in the order it added them) and every
 * waiting object of `deferred` as it is now, in put order (each holding's
 * `order`, each record's). The lease store's order is put order unless
 * objects were taken in from beside after others were put (`unordered`):
 * then they are sorted back. An info without a holding here keeps its place
 * after the one before.
 *
 * @returns The list, and whether the lease store's order was put order.
 */
export async function listInPutOrder(
  infos: ObjectInfo[],
  objects: ReadonlyMap<string, Holding>,
  deferred: readonly DeferredAdoption[],
  unordered: boolean,
): Promise<{ list: ObjectInfo[]; inOrder: boolean }> {
  const waiting: WaitingList[] = [];
  for (const one of deferred) if (one.objects > 0) waiting.push(one.snapshot());
  if (waiting.length === 0 && !unordered) return { list: infos, inOrder: true };
  const { own, orders, inOrder } = inPutOrder(infos, objects);
  if (waiting.length === 0) return { list: own, inOrder };
  const made: ObjectInfo[][] = [];
  for (const list of waiting) made.push(await infosOf(list));
  // Merged by place: each table's records are in put order already.
  const at = waiting.map(() => 0);
  const list: ObjectInfo[] = [];
  let next = 0;
  for (;;) {
    let pick = -1;
    for (let k = 0; k < waiting.length; k++) {
      if (at[k]! >= waiting[k]!.length) continue;
      if (pick < 0 || waiting[k]!.order(at[k]!) < waiting[pick]!.order(at[pick]!)) pick = k;
    }
    if (pick < 0) break;
    const order = waiting[pick]!.order(at[pick]!);
    while (next < own.length && orders[next]! < order) list.push(own[next++]!);
    list.push(made[pick]![at[pick]!]!);
    at[pick]!++;
  }
  while (next < own.length) list.push(own[next++]!);
  return { list, inOrder };
}

/** `infos` sorted by their holdings' `order`, those orders, and whether they were sorted already. */
function inPutOrder(
  infos: ObjectInfo[],
  objects: ReadonlyMap<string, Holding>,
): { own: ObjectInfo[]; orders: Float64Array; inOrder: boolean } {
  const orders = new Float64Array(infos.length);
  let inOrder = true;
  let last = 0;
  for (let i = 0; i < infos.length; i++) {
    const order = objects.get(infos[i]!.id)?.order ?? last;
    if (order < last) inOrder = false;
    else last = order;
    orders[i] = order;
  }
  if (inOrder) return { own: infos, orders, inOrder };
  const index = Array.from(infos, (_, i) => i).sort((a, b) => orders[a]! - orders[b]! || a - b);
  return {
    own: index.map((i) => infos[i]!),
    orders: Float64Array.from(index, (i) => orders[i]!),
    inOrder,
  };
}

/** The infos of every object of `list`, a slice at a time. */
async function infosOf(list: WaitingList): Promise<ObjectInfo[]> {
  if (list.length <= SLICE) return list.infos(0, list.length);
  const infos: ObjectInfo[] = [];
  for (let start = 0; start < list.length; start += SLICE) {
    if (start > 0) await new Promise((resolve) => setTimeout(resolve, 0));
    for (const info of list.infos(start, Math.min(list.length, start + SLICE))) infos.push(info);
  }
  return infos;
}
