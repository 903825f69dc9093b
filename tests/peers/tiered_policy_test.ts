import { Access, CapacityExceededError, ManualClock, NotFoundError } from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import {
  assertPattern,
  openTempTiered,
  openTiered,
  pattern,
  putSettled,
  tempDir,
  tiers,
} from "../helpers/tiered.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

Deno.test("TieredPeer demotes the least recently used objects first, down to the low watermark", async () => {
  await using tiered = await openTempTiered({
    hotCapacity: 10 * KiB,
    highWatermark: 0.9,
    lowWatermark: 0.5,
  });
  const { client, peer } = tiered;
  for (let i = 1; i <= 9; i++) await client.put(pattern(`o${i}`, KiB), { id: `o${i}` });
  await peer.settled();
  assertEquals((await peer.tierStats()).demotions, 0); // 90% is not above the high watermark
  for (const id of ["o1", "o2", "o3"]) await assertPattern(client, id); // now the most recent
  // Creating o10 takes memory past 90%: demotion starts, and create does not wait for it.
  await using writer = await client.create(KiB, { id: "o10" });
  assert((await peer.tierStats()).demoting > 0, "demotion runs in the background");
  await writer.write(pattern("o10", KiB));
  await writer.seal();
  await peer.settled();
  assertEquals((await peer.tierStats()).demoting, 0);
  assertEquals(await tiers(client), {
    o1: "hot",
    o10: "hot",
    o2: "hot",
    o3: "hot",
    o4: "cold",
    o5: "cold",
    o6: "cold",
    o7: "cold",
    o8: "cold",
    o9: "hot",
  });
  assertEquals((await peer.tierStats()).hot.bytes, 5 * KiB);
  for (let i = 1; i <= 10; i++) await assertPattern(client, `o${i}`);
});

Deno.test("TieredPeer leaves objects under a lease in memory, views intact", async () => {
  await using tiered = await openTempTiered({ hotCapacity: 8 * KiB, lowWatermark: 0.375 });
  const { client, peer } = tiered;
  await client.put(pattern("held", 2 * KiB), { id: "held" });
  const reader = await peer.acquire("held", Access.READ);
  const view = reader.blobs[0]!.openView()!;
  for (let i = 0; i < 6; i++) await client.put(pattern(`f${i}`, KiB), { id: `f${i}` });
  await peer.settled();
  // f5 took memory past 90%: idle objects went down to 3 KiB, the leased one stayed.
  assertEquals(await tiers(client), {
    f0: "cold",
    f1: "cold",
    f2: "cold",
    f3: "cold",
    f4: "cold",
    f5: "hot",
    held: "hot",
  });
  assertEquals(view, pattern("held", 2 * KiB));
  // A deleted object keeps its memory for its reader, and is never demoted.
  await client.delete("held");
  await client.put(pattern("g", 4 * KiB + 512), { id: "g" });
  await peer.settled();
  assertEquals((await client.stat("f5")).tier, "cold");
  assert((await peer.tierStats()).hot.bytes >= 2 * KiB);
  assertEquals(view, pattern("held", 2 * KiB));
  await peer.release(reader.lease.id);
  assertEquals(view.length, 0);
});

Deno.test("TieredPeer promotes an object read twice from disk within the window", async () => {
  await using dir = await tempDir();
  const clock = new ManualClock(1_000_000);
  await using tiered = await openTiered(dir.path, {
    hotCapacity: 4 * KiB,
    lowWatermark: 0.75,
    promoteWindow: 1000,
    clock,
  });
  const { client, peer } = tiered;
  await client.put(pattern("a", KiB), { id: "a" });
  await client.put(pattern("b", 3 * KiB), { id: "b" }); // past 90%: "a" goes to disk
  await peer.settled();
  assertEquals(await tiers(client), { a: "cold", b: "hot" });
  await assertPattern(client, "a");
  await peer.settled();
  assertEquals((await client.stat("a")).tier, "cold"); // one read: a scan does not promote
  clock.advance(1001);
  await assertPattern(client, "a");
  await peer.settled();
  assertEquals((await client.stat("a")).tier, "cold"); // the window had passed
  clock.advance(500);
  await assertPattern(client, "a");
  await peer.settled();
  // Promoting "a" took memory past 90% again: "b", now the least recently used, went.
  assertEquals(await tiers(client), { a: "hot", b: "cold" });
  const stats = await peer.tierStats();
  assertEquals([stats.promotions, stats.misses, stats.cold.objects], [1, 3, 2]);
  assertEquals([stats.demotions, stats.demotedBytes], [2, 4 * KiB]);
  // The disk copy of "a" stayed: demoting it again copies nothing.
  await client.put(pattern("c", 3 * KiB), { id: "c" });
  await peer.settled();
  const after = await peer.tierStats();
  assertEquals(await tiers(client), { a: "cold", b: "cold", c: "hot" });
  assertEquals([after.demotions, after.demotedBytes], [3, 4 * KiB]);
  await assertPattern(client, "a");
});

Deno.test("TieredPeer does not promote into memory that has no room", async () => {
  await using tiered = await openTempTiered({
    hotCapacity: 4 * KiB,
    highWatermark: 1,
    promoteAfterReads: 1,
  });
  const { client, peer } = tiered;
  await client.put(pattern("fill", 4 * KiB), { id: "fill" });
  await client.put(pattern("cold", 2 * KiB), { id: "cold" });
  await assertPattern(client, "cold");
  await peer.settled();
  assertEquals(await tiers(client), { cold: "cold", fill: "hot" });
  assertEquals((await peer.tierStats()).promotions, 0);
});

Deno.test("TieredPeer keeps bytes right for readers during demotion", async () => {
  await using tiered = await openTempTiered({
    hotCapacity: 24 * MiB,
    lowWatermark: 0,
    promoteAfterReads: 1,
  });
  const { client, peer } = tiered;
  const ids = Array.from({ length: 12 }, (_, i) => `r${i}`);
  const written: string[] = [];
  let writing = true;
  const readers = Array.from({ length: 4 }, async (_, reader) => {
    let reads = 0;
    while (writing || reads < 24) {
      const id = written[(reads * 5 + reader) % Math.max(1, written.length)];
      if (id !== undefined) await assertPattern(client, id);
      reads++;
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    return reads;
  });
  for (const id of ids) written.push(await client.put(pattern(id, 2 * MiB + 123), { id }));
  await peer.settled();
  writing = false;
  const reads = await Promise.all(readers);
  await peer.settled();
  assert(reads.every((count) => count >= 24));
  const stats = await peer.tierStats();
  assert(stats.demotions > 0 && stats.promotions > 0, "objects moved both ways");
  for (const id of ids) await assertPattern(client, id);
});

Deno.test("TieredPeer in cache mode drops the coldest idle objects when both tiers are full", async () => {
  await using tiered = await openTempTiered({
    mode: "cache",
    hotCapacity: 4 * KiB,
    coldCapacity: 8 * KiB,
    lowWatermark: 0.5,
    promoteAfterReads: 0,
  });
  const { client, peer } = tiered;
  for (let i = 0; i < 8; i++) await putSettled(tiered, `c${i}`, KiB);
  assertEquals((await peer.tierStats()).cold.objects, 6);
  const held = await peer.acquire("c0", Access.READ); // the coldest, but in use
  for (let i = 8; i < 16; i++) await putSettled(tiered, `c${i}`, KiB);
  assert(await client.has("c0"), "a leased object is not dropped");
  assertEquals(await held.blobs[0]!.read(0, KiB), pattern("c0", KiB));
  await peer.release(held.lease.id);
  // Demotions made room on disk by dropping the least recently used idle objects; the
  // sixth is c6 or c7, demoted side by side.
  for (const id of ["c1", "c2", "c3", "c4", "c5"]) {
    await assertRejects(() => client.get(id), NotFoundError);
  }
  const stats = await peer.stats();
  const tierStats = await peer.tierStats();
  assert(tierStats.cold.bytes <= 8 * KiB && tierStats.hot.bytes <= 4 * KiB);
  assertEquals([stats.evictions, tierStats.drops], [6, 6]);
  assertEquals(stats.objects, 16 - tierStats.drops);
  for (const info of await client.list()) await assertPattern(client, info.id);
  // An object larger than both tiers is refused.
  await assertRejects(() => client.put(new Uint8Array(9 * KiB)), CapacityExceededError);
});

Deno.test("TieredPeer in store mode refuses writes when both tiers are full, and keeps everything", async () => {
  await using dir = await tempDir();
  {
    await using tiered = await openTiered(dir.path, {
      mode: "store",
      hotCapacity: 4 * KiB,
      coldCapacity: 8 * KiB,
    });
    const { client, peer } = tiered;
    for (let i = 0; i < 8; i++) await client.put(pattern(`s${i}`, KiB), { id: `s${i}` });
    await assertRejects(() => client.put(pattern("s8", KiB), { id: "s8" }), CapacityExceededError);
    await assertRejects(() => client.create(KiB), CapacityExceededError);
    await peer.settled();
    assertEquals((await peer.tierStats()).drops, 0);
    for (let i = 0; i < 8; i++) await assertPattern(client, `s${i}`);
    // Room comes back when an object is deleted.
    await client.delete("s0");
    await client.put(pattern("s8", KiB), { id: "s8" });
  }
  // Written through at seal: every object is on disk, even those that were only hot.
  await using tiered = await openTiered(dir.path, { mode: "store" });
  const ids = (await tiered.client.list()).map((info) => info.id).sort();
  assertEquals(ids, ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]);
  for (const id of ids) await assertPattern(tiered.client, id);
});
