/** The paging rule (core/list_page.ts) on peers in this process. */
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import {
  Client,
  InvalidArgumentError,
  type ListPage,
  listPageOf,
  MemoryPeer,
  type ObjectInfo,
} from "../../mod.ts";
import {
  formatCursor,
  listPageRequest,
  MAX_PAGE_BYTES,
  pageOf,
  placedAfter,
} from "../../core/list_page.ts";

function ids(infos: readonly ObjectInfo[]): string[] {
  return infos.map((info) => info.id);
}

Deno.test("a memory peer pages in put order; a deleted cursor object skips and repeats nothing", async () => {
  await using peer = new MemoryPeer();
  const client = new Client(peer);
  const put: string[] = [];
  for (let i = 0; i < 7; i++) put.push(await client.put(new Uint8Array([i]), { id: `z${i}` }));
  const first = await peer.listPage({ limit: 3 });
  assertEquals(ids(first.objects), put.slice(0, 3));
  await client.delete(put[2]!);
  await client.delete(put[3]!);
  const late = await client.put("late", { id: "a-late" });
  const second = await peer.listPage({ after: first.next!, limit: 3 });
  assertEquals(ids(second.objects), put.slice(4, 7));
  const third = await peer.listPage({ after: second.next!, limit: 3 });
  assertEquals(third, { objects: [await peer.stat(late)] });
  // The same through a client's walk.
  const walked: string[] = [];
  for await (const info of client.objects({ pageSize: 2 })) walked.push(info.id);
  assertEquals(walked, ids(await peer.list()));
});

Deno.test("a page ending at an id with spaces gives a cursor its peer takes", async () => {
  await using peer = new MemoryPeer();
  const client = new Client(peer);
  const put: string[] = [];
  for (const id of ["a b", "c\u00a0d", "e\u2028f", " g ", "h"]) {
    put.push(await client.put("x", { id }));
  }
  const listed: string[] = [];
  let after: string | undefined;
  do {
    const page: ListPage = await peer.listPage(
      after === undefined ? { limit: 1 } : { after, limit: 1 },
    );
    listed.push(...ids(page.objects));
    after = page.next;
  } while (after !== undefined);
  assertEquals(listed, put);
  await assertRejects(() => peer.listPage({ after: "1:a\nb" }), InvalidArgumentError);
});

Deno.test("a page stops early rather than pass its bytes", async () => {
  await using peer = new MemoryPeer();
  const client = new Client(peer);
  const meta = { big: "x".repeat(60_000) };
  for (let i = 0; i < 100; i++) await client.put(new Uint8Array(1), { meta });
  const page = await peer.listPage({ limit: 100 });
  assert(page.objects.length < 100 && page.objects.length > 10, `${page.objects.length}`);
  assert(JSON.stringify(page).length <= MAX_PAGE_BYTES);
  const rest = await peer.listPage({ after: page.next!, limit: 100 });
  assertEquals(page.objects.length + rest.objects.length, 100);
});

Deno.test("a peer without listPage is paged from its whole list, in id order", async () => {
  await using peer = new MemoryPeer();
  const client = new Client(peer);
  for (const id of ["c", "a", "d", "b"]) await client.put(id, { id });
  const whole = { list: () => peer.list() };
  const first = await listPageOf(whole, { limit: 2 });
  assertEquals(ids(first.objects), ["a", "b"]);
  await client.delete("b");
  const second = await listPageOf(whole, { after: first.next!, limit: 2 });
  assertEquals(second, { objects: [await peer.stat("c"), await peer.stat("d")] });
});

Deno.test("bad page options get InvalidArgumentError", async () => {
  await using peer = new MemoryPeer();
  for (
    const options of [{ limit: 0 }, { limit: 10_001 }, { limit: NaN }, { after: "" }, {
      after: "1",
    }]
  ) {
    await assertRejects(() => peer.listPage(options), InvalidArgumentError);
  }
  await assertRejects(() => peer.listPage("x" as never), InvalidArgumentError);
});

Deno.test("a cursor with shard positions reads back as it was written", () => {
  for (
    const after of [
      { stage: 0, order: 42, id: "abc" },
      { stage: 1, order: 42, id: "a:b~c" },
      { stage: 0, order: 1_765_000_000_000_000, id: "x", lags: new Array(64).fill(0) },
      { stage: 1, order: 1_765_000_000_000_000, id: "x", lags: [0, 60_000_000, 0, 1, 0, 0] },
      { stage: 0, order: 9, id: "x:y", lags: [0, 3], check: "0a9z" },
      { stage: 1, order: 9, id: "x", lags: [0, 0, 0], check: "k" },
    ]
  ) {
    const text = formatCursor(after);
    assertEquals(listPageRequest({ after: text }, 2), { after, limit: 1000 });
  }
  assertEquals(formatCursor({ stage: 0, order: 9, id: "x", lags: [0, 0, 3, 0] }), "9~4...3:x");
  assertEquals(
    formatCursor({ stage: 0, order: 9, id: "x", lags: [0, 0, 3, 0], check: "2bx0" }),
    "9~4...3_2bx0:x",
  );
});

Deno.test("a malformed or foreign cursor with shard positions gets InvalidArgumentError", async () => {
  for (
    const after of [
      "9~0:x", // No shards.
      "9~04:x", // A count with a leading zero.
      "9~2.a:x", // A lag past the order.
      "9~2.1.1.1:x", // More lags than shards.
      "9~2.1.:x", // A trailing empty lag.
      "9~2.01:x", // A lag with a leading zero.
      "9~cn5:x", // More shards than a cluster has slots.
      "9~2.A:x", // Not base 36 in lower case.
      "9~2 :x", // A space in the lags.
      "9~2.1_:x", // An empty check.
      "9~2.1_AB:x", // A check not in lower case.
      "9~2_123456789:x", // A check too long.
      "9~2_ab.1:x", // A check before the lags.
      "9_ab:x", // A check without shards.
    ]
  ) {
    assert(
      (() => {
        try {
          listPageRequest({ after });
          return false;
        } catch (error) {
          return error instanceof InvalidArgumentError && error.code === "INVALID_ARGUMENT";
        }
      })(),
      after,
    );
  }
  // A peer whose list has no shards refuses one, well formed or not.
  await using peer = new MemoryPeer();
  await new Client(peer).put("x");
  const error = await assertRejects(
    () => peer.listPage({ after: "9~2.1:x" }),
    InvalidArgumentError,
  );
  assert(error.message.includes("pass the next of one of its pages"), error.message);
});

Deno.test("a store's list out of put order is paged in put order, none skipped", () => {
  const infos = [5, 1, 4, 2, 6, 3, 7].map((order) =>
    ({ id: `o${order}`, blobSizes: [1], meta: {} }) as unknown as ObjectInfo
  );
  const orderOf = (info: ObjectInfo) => Number(info.id.slice(1));
  const seen: string[] = [];
  let after: string | undefined;
  do {
    const { after: cursor, limit } = listPageRequest(
      after === undefined ? { limit: 2 } : { after, limit: 2 },
    );
    const page = pageOf([placedAfter(infos, orderOf, cursor, limit)], limit);
    seen.push(...ids(page.objects));
    after = page.next;
  } while (after !== undefined);
  assertEquals(seen, ["o1", "o2", "o3", "o4", "o5", "o6", "o7"]);
});
