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

Deno.test("a cursor reads back as it was written", () => {
  for (
    const after of [
      { stage: 0, order: 42, id: "abc" },
      { stage: 1, order: 42, id: "a:b~c" },
      { stage: 0, order: 1_765_000_000_000_000, id: "x", check: "0a9zq1" },
      { stage: 1, order: 9, id: "x-y:z", check: "zzzzzz" },
      // The forms of the versions before, with shard positions.
      { stage: 0, order: 1_765_000_000_000_000, id: "x", lags: new Array(64).fill(0) },
      { stage: 1, order: 1_765_000_000_000_000, id: "x", lags: [0, 60_000_000, 0, 1, 0, 0] },
      { stage: 0, order: 9, id: "x:y", lags: [0, 3], check: "0a9z" },
      { stage: 1, order: 9, id: "x", lags: [0, 0, 0], check: "k" },
    ]
  ) {
    const text = formatCursor(after);
    assertEquals(listPageRequest({ after: text }, 2), { after, limit: 1000 });
  }
  assertEquals(formatCursor({ stage: 0, order: 9, id: "x", check: "0a9zq1" }), "9-0a9zq1:x");
  assertEquals(formatCursor({ stage: 0, order: 9, id: "x", lags: [0, 0, 3, 0] }), "9~4...3:x");
  assertEquals(
    formatCursor({ stage: 0, order: 9, id: "x", lags: [0, 0, 3, 0], check: "2bx0" }),
    "9~4...3_2bx0:x",
  );
});

/**
 * How each version before read a cursor (from git history: the pattern of
 * core/list_page.ts at the commit named), to check that every form it made
 * is still read, and that it refuses every form made now rather than read
 * it as one of its own.
 */
const EARLIER_CURSORS: readonly { commit: string; pattern: RegExp; made: string[] }[] = [
  { commit: "16142e3", pattern: /^(0|[1-9][0-9]{0,15}):([^\s]{1,1024})$/, made: ["42:abc"] },
  {
    commit: "29764b4",
    pattern: /^(?:([1-9])\.)?(0|[1-9][0-9]{0,15}):([^\s]{0,1024})$/,
    made: ["42:abc", "1.42:abc", "1.0:"],
  },
  {
    commit: "a944e22",
    pattern:
      /^(?:([1-9])\.)?(0|[1-9][0-9]{0,15})(?:~([1-9a-z][0-9a-z]{0,2})((?:\.[0-9a-z]{0,11})*))?:([^\s]{0,1024})$/,
    made: ["1765000000000000~1s..1x3k...2:abc", "1.1765000000000000~1s:abc"],
  },
  {
    commit: "387e04d",
    pattern:
      // deno-lint-ignore no-control-regex
      /^(?:([1-9])\.)?(0|[1-9][0-9]{0,15})(?:~([1-9a-z][0-9a-z]{0,2})((?:\.[0-9a-z]{0,11})*))?:([^\u0000-\u001f\u007f]{0,1024})$/,
    made: ["1765000000000000~1s..1x3k:a b"],
  },
  {
    commit: "269ee7f",
    pattern:
      // deno-lint-ignore no-control-regex
      /^(?:([1-9])\.)?(0|[1-9][0-9]{0,15})(?:~([1-9a-z][0-9a-z]{0,2})((?:\.[0-9a-z]{0,11})*)(?:_([0-9a-z]{1,8}))?)?:([^\u0000-\u001f\u007f]{0,1024})$/,
    made: ["1765000000000000~1s..1x3k_45ti:a b", "1765000000000000~1s_45ti:abc"],
  },
];

Deno.test("every cursor form of the versions before is read, and none of them reads one made now", () => {
  const read = (after: string) => listPageRequest({ after }, 2).after!;
  assertEquals(read("42:abc"), { stage: 0, order: 42, id: "abc" });
  assertEquals(read("1.42:abc"), { stage: 1, order: 42, id: "abc" });
  assertEquals(read("1.0:"), { stage: 1, order: 0, id: "" });
  const lags = new Array(64).fill(0);
  lags[1] = parseInt("1x3k", 36);
  lags[4] = 2;
  assertEquals(read("1765000000000000~1s..1x3k...2:abc"), {
    stage: 0,
    order: 1_765_000_000_000_000,
    id: "abc",
    lags,
  });
  assertEquals(read("1.1765000000000000~1s:abc").lags, new Array(64).fill(0));
  assertEquals(read("1765000000000000~1s..1x3k_45ti:a b"), {
    stage: 0,
    order: 1_765_000_000_000_000,
    id: "a b",
    lags: lags.map((lag, i) => i === 1 ? lag : 0),
    check: "45ti",
  });
  for (const { commit, pattern, made } of EARLIER_CURSORS) {
    for (const text of made) {
      assert(pattern.test(text), `${commit} made ${text}`);
      assertEquals(formatCursor(read(text)), text, `${text} (${commit}) written back`);
    }
    for (
      const now of [
        formatCursor({ stage: 0, order: 1_765_000_000_000_000, id: "abc", check: "0a9zq1" }),
        formatCursor({ stage: 1, order: 9, id: "x:y", check: "000000" }),
      ]
    ) {
      assert(!pattern.test(now), `${commit} would read ${now} as its own`);
    }
  }
});

Deno.test("a malformed or foreign cursor of a store gets InvalidArgumentError", async () => {
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
      "9-abc12:x", // A store's check of five characters.
      "9-abc1234:x", // Of seven.
      "9-ABC123:x", // Not in lower case.
      "9~2.1-abc123:x", // Shard positions and a store's check.
      "9-abc123_ab:x", // Two checks.
      "9-:x", // An empty check.
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
  // A peer whose list is its own refuses one a store made, well formed or not.
  await using peer = new MemoryPeer();
  await new Client(peer).put("x");
  for (const after of ["9~2.1:x", "9-abc123:x"]) {
    const error = await assertRejects(() => peer.listPage({ after }), InvalidArgumentError);
    assert(error.message.includes("pass the next of one of its pages"), error.message);
  }
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
