import { Access, InvalidArgumentError, TieredPeer } from "../../mod.ts";
import { createPeer } from "../../daemon/daemon.ts";
import { parseServeArgs } from "../../daemon/options.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { closeAlso } from "../helpers/close_also.ts";
import { lifecycleSuite } from "../helpers/lifecycle_suite.ts";
import {
  assertPattern,
  openTempTiered,
  pattern,
  putSettled,
  tempDir,
  tiers,
} from "../helpers/tiered.ts";

const KiB = 1024;

for (const mode of ["cache", "store"] as const) {
  lifecycleSuite(`TieredPeer (${mode})`, {}, async (clock) => {
    const dir = await Deno.makeTempDir({ prefix: "packice-tiered-" });
    const peer = await TieredPeer.open({ dir, mode, clock, sweepInterval: 0 });
    return closeAlso(peer, () => Deno.remove(dir, { recursive: true }));
  });
}

Deno.test("TieredPeer places a new object in memory when it fits, else on disk at once", async () => {
  await using tiered = await openTempTiered({ hotCapacity: 8 * KiB, highWatermark: 1 });
  const { client, peer } = tiered;
  await client.put(pattern("small", 6 * KiB), { id: "small" });
  await client.put(pattern("big", 16 * KiB), { id: "big" });
  await client.put(pattern("next", 4 * KiB), { id: "next" });
  assertEquals(await tiers(client), { big: "cold", next: "cold", small: "hot" });
  assertEquals((await client.stat("big")).tier, "cold");
  const stats = await peer.tierStats();
  assertEquals([stats.hot.bytes, stats.hot.objects], [6 * KiB, 1]);
  assertEquals([stats.cold.bytes, stats.cold.objects], [20 * KiB, 2]);
  for (const id of ["small", "big", "next"]) await assertPattern(client, id);
});

Deno.test("TieredPeer serves objects on disk through the same client API", async () => {
  await using tiered = await openTempTiered({
    hotCapacity: 4 * KiB,
    lowWatermark: 0,
    promoteAfterReads: 0,
  });
  const { client, peer } = tiered;
  for (let i = 0; i < 8; i++) await client.put(pattern(`o${i}`, KiB), { id: `o${i}` });
  await peer.settled();
  assertEquals(
    Object.values(await tiers(client)).filter((tier) => tier === "cold").length >= 4,
    true,
  );
  for (let i = 0; i < 8; i++) await assertPattern(client, `o${i}`);
  // Several blobs, and reads at an offset, from disk.
  const { lease, blobs } = await peer.acquire("multi", Access.CREATE, { size: [3 * KiB, 5 * KiB] });
  await blobs[0]!.write(0, pattern("a", 3 * KiB));
  await blobs[1]!.write(0, pattern("b", 5 * KiB));
  await peer.seal(lease.id);
  await peer.release(lease.id);
  await peer.settled();
  const read = await peer.acquire("multi", Access.READ);
  assertEquals(read.object.tier, "cold");
  assertEquals(read.blobs[1]!.openView(), undefined);
  assertEquals(await read.blobs[1]!.read(100, 50), pattern("b", 5 * KiB).subarray(100, 150));
  await peer.release(read.lease.id);
  await client.delete("multi");
  assertEquals(await client.has("multi"), false);
});

Deno.test("TieredPeer counts bytes per tier and moves, for metrics", async () => {
  await using tiered = await openTempTiered({
    hotCapacity: 4 * KiB,
    lowWatermark: 0.5,
    promoteAfterReads: 1,
  });
  const { client, peer } = tiered;
  for (let i = 0; i < 5; i++) await putSettled(tiered, `m${i}`, KiB);
  const before = await peer.tierStats();
  // m3 takes memory past 90%: m0 and m1 go, down to 50%.
  assertEquals([before.demotions, before.demotedBytes], [2, 2 * KiB]);
  await assertPattern(client, "m0"); // a miss, promoted at once
  await peer.settled();
  await assertPattern(client, "m0"); // a hit
  const stats = await peer.stats();
  assertEquals([stats.hits, stats.misses, stats.evictions], [1, 1, 0]);
  const metrics = await peer.metrics();
  assertEquals(metrics.tier_promotions_total, 1);
  assertEquals(metrics.tier_promoted_bytes_total, KiB);
  assertEquals(metrics.tier_hot_capacity_bytes, 4 * KiB);
  const after = await peer.tierStats();
  assertEquals(metrics.tier_hot_bytes, after.hot.bytes);
  assertEquals(metrics.tier_cold_objects, after.cold.objects);
  assertEquals(metrics.tier_move_failures_total, 0);
  assertEquals(metrics.tier_demoting_bytes, 0);
  assertEquals((await client.stat("m0")).tier, "hot");
});

Deno.test("TieredPeer.open() refuses bad budgets and policies", async () => {
  await using dir = await tempDir();
  const bad = [
    { hotCapacity: -1 },
    { coldCapacity: 1.5 },
    { highWatermark: 1.2 },
    { lowWatermark: 0.95 },
    { promoteAfterReads: -1 },
    { mode: "archive" as "store" },
  ];
  for (const options of bad) {
    await assertRejects(() => TieredPeer.open({ dir: dir.path, ...options }), InvalidArgumentError);
  }
});

Deno.test("serve --impl tiered builds a TieredPeer with its budgets and mode", async () => {
  await using dir = await tempDir();
  const options = parseServeArgs([
    "--impl",
    "tiered",
    "--data-dir",
    dir.path,
    "--hot",
    "8KiB",
    "--cold",
    "16KiB",
    "--mode",
    "store",
  ]);
  await using peer = await createPeer(options);
  assert(peer instanceof TieredPeer);
  const stats = await peer.tierStats();
  assertEquals([stats.hot.capacity, stats.cold.capacity], [8 * KiB, 16 * KiB]);
  assertEquals((await peer.stats()).capacity, 16 * KiB); // store mode: every object is on disk
});
