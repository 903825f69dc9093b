import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { Slots, TokenBucket } from "../../mod.ts";
import { paced } from "../../transport/rate_limit.ts";

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

Deno.test("slots keep a short line: beyond it, or once its wait is aborted, no slot", async () => {
  const slots = new Slots(1);
  const first = await slots.acquireWithin(1);
  assert(first !== undefined);
  // One may wait; a second waiter is told at once.
  const waiting = slots.acquireWithin(1);
  assertEquals(await slots.acquireWithin(1), undefined);
  assertEquals(slots.waiting, 1);
  first();
  const second = await waiting;
  assert(second !== undefined);
  // An aborted wait leaves the line, and the slot goes to the one after it.
  const leave = new AbortController();
  const gone = slots.acquireWithin(2, leave.signal);
  const third = slots.acquireWithin(2);
  leave.abort();
  assertEquals(await gone, undefined);
  assertEquals(slots.waiting, 1);
  second();
  (await third)!();
  assertEquals([slots.used, slots.waiting], [0, 0]);
});

Deno.test("paced() sends its source's bytes in slices at the rate, read afresh for each slice", async () => {
  const bytes = new Uint8Array(300 << 10).map((_, i) => i & 255);
  // 256 KiB/s with a burst of 64 KiB: the 236 KiB after the burst take about 0.9 s.
  const bucket = new TokenBucket(256 << 10, 64 << 10);
  const started = performance.now();
  const chunks = await Array.fromAsync(paced({ bytes }, bucket));
  const ms = performance.now() - started;
  assert(ms > 800 && ms < 1500, `${ms} ms`);
  // Zero-copy: views of the bytes themselves, in 64 KiB slices at this rate.
  assert(chunks.every((chunk) => chunk.buffer === bytes.buffer));
  assertEquals(chunks.map((chunk) => chunk.length), [65536, 65536, 65536, 65536, 45056]);
  // Without a bucket, 1 MiB slices; bytes swapped for a copy midway are read from the copy.
  const source = { bytes: new Uint8Array(3 << 20).fill(1) };
  const reader = paced(source).getReader();
  assertEquals((await reader.read()).value?.length, 1 << 20);
  const copy = source.bytes.slice().fill(2);
  source.bytes = copy;
  const next = (await reader.read()).value!;
  assert(next.buffer === copy.buffer && next[0] === 2);
  await reader.cancel();
});
