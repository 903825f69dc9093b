import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { Slots, TokenBucket } from "../../mod.ts";

Deno.test("a token bucket lets a burst through, then makes takers wait for the rate", () => {
  let now = 0;
  const bucket = new TokenBucket(1000, 100, () => now);
  assertEquals(bucket.reserve(100), 0);
  // Into debt: 50 bytes at 1000 B/s is 50 ms.
  assertEquals(bucket.reserve(50), 50);
  // The next taker waits behind the first.
  assertEquals(bucket.reserve(50), 100);
  now += 100;
  assertEquals(bucket.reserve(0), 0);
  // Idle time refills up to the burst only.
  now += 10_000;
  assertEquals(bucket.reserve(100), 0);
  assertEquals(bucket.reserve(1), 1);
  assertThrows(() => new TokenBucket(0), RangeError);
  assertThrows(() => new TokenBucket(Infinity), RangeError);
});

Deno.test("a token bucket holds a long run to its rate", async () => {
  const bucket = new TokenBucket(4 << 20);
  const started = performance.now();
  for (let i = 0; i < 32; i++) await bucket.take(64 << 10);
  // 2 MiB at 4 MiB/s, less the 200 KiB burst: about 450 ms.
  const ms = performance.now() - started;
  assert(ms > 400 && ms < 900, `${ms} ms`);
});

Deno.test("slots let a few in at once; the others wait in order", async () => {
  const slots = new Slots(2);
  const first = await slots.acquire();
  const second = await slots.acquire();
  const order: number[] = [];
  const third = slots.acquire().then((free) => (order.push(3), free));
  const fourth = slots.acquire().then((free) => (order.push(4), free));
  await Promise.resolve();
  assertEquals([slots.used, slots.waiting, order], [2, 2, []]);
  first();
  first(); // A second call frees nothing more.
  (await third)();
  (await fourth)();
  second();
  assertEquals(order, [3, 4]);
  assertEquals([slots.used, slots.waiting], [0, 0]);
  assertThrows(() => new Slots(0), RangeError);
});
