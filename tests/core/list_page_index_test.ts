/** Pages of a peer whose lease store is its own start in its index in put order (core/order_index.ts). */
import { assert, assertEquals } from "../helpers/assert.ts";
import { udsClient } from "../helpers/uds_client.ts";
import { Client, ManualClock, MemoryLeaseStore, MemoryPeer, type ObjectInfo } from "../../mod.ts";
import type { Holding } from "../../core/holding.ts";
import { OrderIndex } from "../../core/order_index.ts";
import { openNative } from "../helpers/native.ts";
import { pattern } from "../helpers/pattern.ts";
import { servePeer } from "../helpers/served_peer.ts";

const native = openNative();

/** A memory lease store that counts the calls of its whole list. */
class CountingLeases extends MemoryLeaseStore {
  lists = 0;

  override list(): Promise<ObjectInfo[]> {
    this.lists++;
    return super.list();
  }
}

function ids(infos: readonly ObjectInfo[]): string[] {
  return infos.map((info) => info.id);
}

Deno.test("a page of a peer with its own lease store never reads the store's whole list", async () => {
  const clock = new ManualClock(10_000);
  const leases = new CountingLeases(clock);
  await using peer = new MemoryPeer({ leases, clock, sweepInterval: 0 });
  const client = new Client(peer);
  const put: string[] = [];
  for (let i = 0; i < 3000; i++) {
    put.push(await client.put(new Uint8Array([i & 255]), i % 500 === 7 ? { ttl: 1000 } : {}));
  }
  clock.advance(1000);
  const seen: string[] = [];
  const added: string[] = [];
  let after: string | undefined;
  do {
    const page = await peer.listPage(after === undefined ? { limit: 100 } : { after, limit: 100 });
    seen.push(...ids(page.objects));
    after = page.next;
    if (seen.length === 1000) {
      // The cursor's own object, one before it and one ahead; and a new one.
      for (const id of [seen[999]!, seen[998]!, put[1500]!]) await client.delete(id);
      added.push(await client.put("late"));
    }
  } while (after !== undefined);
  assertEquals(leases.lists, 0);
  // None past its deadline (all are by the first page), the two deleted once listed kept.
  assertEquals(seen, [...put.filter((id, i) => i % 500 !== 7 && id !== put[1500]), ...added]);
});

Deno.test("an order index keeps holdings in order across chunks, inserts in place and removals", () => {
  const index = new OrderIndex();
  const holdings = new Map<number, Holding>();
  const holding = (order: number) => {
    const one = { order, info: { id: `o${order}` } } as unknown as Holding;
    holdings.set(order, one);
    return one;
  };
  // Every even order appended, then the odd ones in place, last first; then some removed.
  for (let order = 2; order <= 6000; order += 2) index.add(holding(order));
  for (let order = 5999; order >= 1; order -= 2) index.add(holding(order));
  for (let order = 3; order <= 6000; order += 3) index.delete(holdings.get(order)!);
  index.delete(holding(7000));
  const expected = [...holdings.keys()].filter((order) => order % 3 !== 0 && order <= 6000)
    .sort((a, b) => a - b);
  const orders = (from: number) => [...index.from(from)].map((one) => one.order);
  assertEquals(orders(0), expected);
  assertEquals(orders(4000), expected.filter((order) => order >= 4000));
  assertEquals(orders(6001), []);
  index.clear();
  assertEquals(orders(0), []);
});

Deno.test({
  name: "an object taken in from beside between pages is listed once, in its place",
  ignore: native === undefined,
  async fn() {
    await using served = await servePeer(new MemoryPeer({ capacity: 64 * 1024 * 1024 }));
    await using client = await udsClient(served.path);
    const put: string[] = [];
    for (let i = 0; i < 40; i++) put.push(await client.put(pattern(100, i)));
    const seen: string[] = [];
    for await (const info of client.objects({ pageSize: 10 })) {
      seen.push(info.id);
      // Taken in by reads: one listed already, the cursor's own, and ones ahead.
      if (seen.length === 10) {
        for (const at of [4, 9, 15, 16, 33]) (await client.get(put[at]!)).close();
      }
    }
    assertEquals(seen, put);
    assert((await client.list()).length === 40);
  },
});
