import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemon } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { CapacityExceededError, connect, TransferBudget } from "../../mod.ts";

Deno.test("a transfer budget lets fetches in while they fit; the next waits in order", async () => {
  const budget = new TransferBudget(100);
  const a = await budget.reserve(60, "a");
  const b = await budget.reserve(40, "b");
  const order: string[] = [];
  const c = budget.reserve(50, "c").then((held) => (order.push("c"), held));
  const d = budget.reserve(10, "d").then((held) => (order.push("d"), held));
  await Promise.resolve();
  assertEquals([budget.used, order], [100, []]);
  a.release();
  a.release(); // Once only.
  (await c).release();
  (await d).release();
  b.release();
  assertEquals([budget.used, order], [0, ["c", "d"]]);
});

Deno.test("a full transfer budget refuses with CAPACITY_EXCEEDED, never grows", async () => {
  const budget = new TransferBudget(100, 50);
  await assertRejects(() => budget.reserve(101, "huge"), CapacityExceededError, "exceed");
  const held = await budget.reserve(80, "a");
  await assertRejects(() => budget.reserve(30, "b"), CapacityExceededError, "stayed full");
  const abort = new AbortController();
  const waiting = budget.reserve(30, "c", abort.signal);
  abort.abort();
  await assertRejects(() => waiting, CapacityExceededError);
  assertEquals(budget.used, 80);
  held.release();
  (await budget.reserve(100, "d")).release();
  assertEquals(budget.used, 0);
});

Deno.test(
  "a daemon's transfer budget: a larger object is refused typed, fetches that fit wait their turn",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-budget-" });
    try {
      await using a = await startClusterDaemon(redis.url, dir, "a");
      await using b = await startClusterDaemon(redis.url, dir, "b", "cluster", [
        "--transfer-budget",
        "8MiB",
      ]);
      const big = pattern(9 << 20, 1);
      const one = pattern(6 << 20, 2);
      const two = pattern(6 << 20, 3);
      {
        await using client = await connect(a.socket);
        await client.put(big, { id: "big" });
        await client.put(one, { id: "one" });
        await client.put(two, { id: "two" });
      }
      await using client = await connect(b.socket);
      await assertRejects(() => client.get("big"), CapacityExceededError, "transfer budget");
      // Two of 6 MiB at once in 8 MiB: one after the other, both right.
      const [first, second] = await Promise.all([client.get("one"), client.get("two")]);
      using _first = first;
      using _second = second;
      assert(sameBytes(first.bytes, one) && sameBytes(second.bytes, two));
      assertEquals((await b.metrics()).cluster_fetches_total, 2);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("an endgame scratch piece takes budget only if there is room now, never jumping the line", async () => {
  const budget = new TransferBudget(100);
  const object = await budget.reserve(70, "object");
  const scratch = budget.tryReserve(30);
  assert(scratch !== undefined);
  assertEquals(budget.tryReserve(1), undefined);
  scratch.release();
  // Someone waits for room: a scratch piece does not pass them.
  const waiting = budget.reserve(40, "next");
  assertEquals(budget.tryReserve(10), undefined);
  object.release();
  (await waiting).release();
  assertEquals(budget.used, 0);
});
