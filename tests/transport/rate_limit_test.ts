import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { Slots, TokenBucket } from "../../mod.ts";
import { type ByteBucket, paced } from "../../transport/rate_limit.ts";
import { NativeBucket } from "../../transport/http/native_bucket.ts";
import { loadNative } from "../../native/load.ts";

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

/**
 * A taker of 20 KB at a time from a bucket of 1 MB/s (burst 50 KB), for 10 s
 * of a fake clock, that comes back `late(i)` ms after the end of its i-th
 * wait, then works `stall(i)` ms before its next take (1 ms after takes that
 * did not wait): its average rate in bytes a second.
 */
function averageRate(
  late: (i: number) => number,
  catchUp?: number,
  stall: (i: number) => number = () => 1,
): number {
  let now = 0;
  const bucket = new TokenBucket(1e6, 50e3, () => now, catchUp);
  let waits = 0;
  while (now < 10_000) {
    const wait = bucket.reserve(20e3);
    if (wait > 0) {
      const i = waits++;
      const overslept = late(i);
      now += wait + overslept;
      bucket.overslept(overslept);
      now += stall(i);
    } else now += 1;
  }
  return bucket.taken / now * 1000;
}

Deno.test("a token bucket makes up waits that end late, so the long run keeps its rate", () => {
  // Every 4th wait ends 200 ms late, a starved process's timer: 4x the 50 ms burst.
  const starved = (i: number) => i % 4 === 0 ? 200 : 0;
  const made = averageRate(starved);
  assert(Math.abs(made / 1e6 - 1) < 0.02, `${made} B/s`);
  // Kept to the burst alone (the catch-up no larger), most of that time is lost.
  const lost = averageRate(starved, 50e3);
  assert(lost < 0.8e6, `${lost} B/s`);
  // On time, both keep the rate.
  assert(Math.abs(averageRate(() => 0) / 1e6 - 1) < 0.02);
  assert(Math.abs(averageRate(() => 0, 50e3) / 1e6 - 1) < 0.02);
});

Deno.test("a token bucket keeps the bytes of a short stall after a wait, not of a long one", () => {
  // On time out of every wait, but every 4th is followed by 150 ms of the daemon's own work
  // (3x the 50 ms burst) before the next take: that time is made up.
  const busy = averageRate(() => 0, undefined, (i) => i % 4 === 0 ? 150 : 1);
  assert(Math.abs(busy / 1e6 - 1) < 0.02, `${busy} B/s`);
  // Kept to the burst alone (the catch-up no larger), most of it is lost.
  const lost = averageRate(() => 0, 50e3, (i) => i % 4 === 0 ? 150 : 1);
  assert(lost < 0.7e6, `${lost} B/s`);
  // 400 ms after a wait is idle, not a stall: the burst only, as after any idle time.
  const idle = averageRate(() => 0, undefined, (i) => i % 4 === 0 ? 400 : 1);
  assert(idle < 0.5e6, `${idle} B/s`);
});

Deno.test("a token bucket lets through at once no more than the bytes of a short gap after its debt", () => {
  let now = 0;
  // 1000 B/s, burst 100 B.
  const bucket = new TokenBucket(1000, 100, () => now);
  assertEquals(bucket.reserve(100), 0);
  assertEquals(bucket.reserve(100), 100);
  // The debt ends at 100 ms; a take 200 ms later has those 200 bytes, not one more.
  now += 300;
  assertEquals(bucket.reserve(200), 0);
  assertEquals(bucket.reserve(1), 1);
  // The same gap once the debt's end is 250 ms behind: idle, the burst only.
  now += 1 + 251;
  assertEquals(bucket.reserve(100), 0);
  assertEquals(bucket.reserve(1), 1);
  // A gap after takes that never waited is idle time too.
  now += 1 + 10_000;
  assertEquals(bucket.reserve(50), 0);
  now += 200;
  assertEquals(bucket.reserve(100), 0);
  assertEquals(bucket.reserve(1), 1);
  // The catch-up bounds a gap's bytes as it does a late wake-up's.
  const small = new TokenBucket(1000, 100, () => now, 150);
  assertEquals(small.reserve(200), 100);
  now += 100 + 200;
  assertEquals(small.reserve(150), 0);
  assertEquals(small.reserve(1), 1);
});

Deno.test("a token bucket's catch-up is bounded in bytes, and idle time refills the burst only", () => {
  let now = 0;
  // 1000 B/s, burst 100 B, at most 1000 B made up.
  const bucket = new TokenBucket(1000, 100, () => now, 1000);
  assertEquals(bucket.reserve(100), 0);
  assertEquals(bucket.reserve(100), 100);
  // Back 400 ms after the wait's end: those 400 bytes are kept.
  now += 500;
  bucket.overslept(400);
  assertEquals(bucket.reserve(400), 0);
  assertEquals(bucket.reserve(1), 1);
  // A 5 s stall in a wait: 1000 bytes at most, however long the stall.
  now += 1 + 5000;
  bucket.overslept(5000);
  assertEquals(bucket.reserve(1000), 0);
  assertEquals(bucket.reserve(1), 1);
  // Several takers late at once (one stalled process): the most late counts, not their sum.
  now += 1 + 300;
  bucket.overslept(300);
  bucket.overslept(250);
  assertEquals(bucket.reserve(300), 0);
  assertEquals(bucket.reserve(1), 1);
  // Credit not spent stays until it is; once spent, the burst is the cap again.
  now += 1 + 200;
  bucket.overslept(200);
  assertEquals(bucket.reserve(100), 0);
  now += 10_000;
  assertEquals(bucket.reserve(200), 0);
  assertEquals(bucket.reserve(1), 1);
  now += 10_000;
  assertEquals(bucket.reserve(100), 0);
  assertEquals(bucket.reserve(1), 1);
  // Late while a debt was still owed: nothing more than the refill itself comes of it.
  now += 1;
  assertEquals(bucket.reserve(500), 500);
  bucket.overslept(100);
  now += 300;
  assertEquals(bucket.reserve(0), 200);
  assertThrows(() => new TokenBucket(1000, 100, () => now, 0), RangeError);
});

/**
 * Takes 50 KB from a full bucket of 1 MB/s, burst 50 KB (its debt: a 50 ms
 * wait), while the thread is kept busy for 300 ms, so the wait ends about
 * 250 ms late; then `reserve(250e3)`: the milliseconds it is told to wait.
 */
/** Keeps the thread busy for `ms`, as a starved process. */
function stall(ms: number) {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* busy */ }
}

async function afterLateWait(bucket: ByteBucket, reserve: (bytes: number) => number) {
  reserve(50e3);
  const taking = bucket.take(50e3);
  const busy = performance.now() + 300;
  while (performance.now() < busy) { /* a starved process */ }
  await taking;
  return reserve(250e3);
}

Deno.test("take() makes up a wait that ended late, in TokenBucket and the native bucket alike", async () => {
  const bucket = new TokenBucket(1e6, 50e3);
  // 250 KB kept for it (the refill alone stops at the 50 KB burst: a 200 ms wait).
  assertEquals(await afterLateWait(bucket, (bytes) => bucket.reserve(bytes)), 0);
  const native = loadNative();
  assert(native !== undefined, "the native library is built");
  const shared = new NativeBucket(native, 1e6);
  const plain = new NativeBucket(native, 1e6);
  const idle = new NativeBucket(native, 1e6);
  try {
    const reserve = (on: NativeBucket) => (bytes: number) =>
      native.symbols.pk_tb_reserve(on.pointer, bytes);
    assertEquals(await afterLateWait(shared, reserve(shared)), 0);
    // Not late in the wait, but busy 150 ms after it: kept as well (a wait of 50 ms without).
    for (const on of [bucket, plain]) {
      const take = on === bucket ? (bytes: number) => bucket.reserve(bytes) : reserve(plain);
      await on.take(100e3);
      stall(150);
      const wait = take(150e3);
      assert(wait < 20, `${wait} ms to wait after a 150 ms stall`);
    }
    // Stalled 600 ms after the wait: idle, the refill stops at the burst (64 KiB). A bucket of
    // its own: what a late wake-up above kept and was not spent would still be there.
    stall(reserve(idle)(100e3) + 600);
    assert(reserve(idle)(250e3) > 150);
  } finally {
    shared.free();
    plain.free();
    idle.free();
  }
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
