import { join } from "node:path";
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  assertPattern,
  openTiered,
  pattern,
  putSettled,
  tempDir,
  tiers,
} from "../helpers/tiered.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const CHILD = new URL("../helpers/tiered_child.ts", import.meta.url).pathname;

async function names(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) found.push(entry.name);
  return found.sort();
}

Deno.test("TieredPeer finds its objects on disk after a restart; cache mode loses the memory-only ones", async () => {
  await using dir = await tempDir();
  {
    await using tiered = await openTiered(dir.path, {
      hotCapacity: 4 * KiB,
      lowWatermark: 0.5,
    });
    for (let i = 0; i < 6; i++) await putSettled(tiered, `p${i}`, KiB);
    assertEquals(await tiers(tiered.client), {
      p0: "cold",
      p1: "cold",
      p2: "cold",
      p3: "cold",
      p4: "hot",
      p5: "hot",
    });
  }
  await using tiered = await openTiered(dir.path, { hotCapacity: 4 * KiB });
  const { client, peer } = tiered;
  assertEquals(await tiers(client), { p0: "cold", p1: "cold", p2: "cold", p3: "cold" });
  assertEquals((await client.stat("p2")).meta, { size: KiB });
  for (let i = 0; i < 4; i++) await assertPattern(client, `p${i}`);
  const stats = await peer.tierStats();
  assertEquals([stats.cold.bytes, stats.cold.objects, stats.hot.bytes], [4 * KiB, 4, 0]);
});

Deno.test("TieredPeer removes unfinished demotions and broken objects when it opens", async () => {
  await using dir = await tempDir();
  {
    // Memory too small for any of them: each goes straight to disk.
    await using tiered = await openTiered(dir.path, { hotCapacity: 512 });
    for (const id of ["whole", "other", "last"]) {
      await tiered.client.put(pattern(id, KiB), { id });
    }
    assertEquals((await tiered.client.stat("whole")).tier, "cold");
  }
  // What a crash in mid-demotion leaves: a copy under tmp/ never renamed, half written.
  const unfinished = join(dir.path, "tmp", crypto.randomUUID());
  await Deno.mkdir(unfinished, { recursive: true });
  await Deno.writeFile(join(unfinished, "0"), pattern("halfway", 300));
  // And what a torn disk could: an object without its meta file, one with a short blob.
  await Deno.mkdir(join(dir.path, "objects", "nometa"));
  await Deno.writeFile(join(dir.path, "objects", "nometa", "0"), pattern("nometa", KiB));
  await Deno.truncate(join(dir.path, "objects", "other", "0"), 100);

  await using tiered = await openTiered(dir.path, { hotCapacity: 512 });
  assertEquals((await tiered.client.list()).map((info) => info.id).sort(), ["last", "whole"]);
  await assertPattern(tiered.client, "whole");
  assertEquals(await names(join(dir.path, "tmp")), []);
  assertEquals(await names(join(dir.path, "objects")), ["last", "whole"]);
});

/**
 * Runs the writer child until it has reported `sealed` objects and
 * `demotions`, then kills it; returns the ids it reported sealed.
 */
async function writeThenKill(
  dir: string,
  mode: "store" | "cache",
  size: number,
  hot: number,
  until: { sealed: number; demotions: number },
): Promise<string[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CHILD, dir, mode, String(size), String(hot)],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const sealed: string[] = [];
  let demotions = 0;
  let buffered = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (sealed.length < until.sealed || demotions < until.demotions) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`The writer exited after ${sealed.length} objects`);
      buffered += value;
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const [, id, count] = line.split(" ");
        sealed.push(id!);
        demotions = Number(count);
      }
    }
    child.kill("SIGKILL");
  } finally {
    await reader.cancel();
    await child.status;
  }
  return sealed;
}

Deno.test("TieredPeer killed in mid-demotion leaves each object whole in one tier, or gone (cache mode)", async () => {
  await using dir = await tempDir();
  // 4 MiB objects into 8 MiB of memory: demotions run all the time the writer does.
  const sealed = await writeThenKill(dir.path, "cache", 4 * MiB, 8 * MiB, {
    sealed: 12,
    demotions: 2,
  });
  await using tiered = await openTiered(dir.path, { hotCapacity: 8 * MiB });
  const found = (await tiered.client.list()).map((info) => info.id);
  assert(found.length > 0, "demoted objects survive");
  assert(found.some((id) => sealed.includes(id)), "objects sealed before the kill survive");
  for (const id of found) {
    assert(/^k\d+$/.test(id), `unexpected object ${id}`);
    await assertPattern(tiered.client, id);
  }
  assertEquals(await names(join(dir.path, "tmp")), []);
});

Deno.test("TieredPeer killed while writing in store mode loses no sealed object", async () => {
  await using dir = await tempDir();
  const sealed = await writeThenKill(dir.path, "store", 2 * MiB, 8 * MiB, {
    sealed: 10,
    demotions: 0,
  });
  await using tiered = await openTiered(dir.path, { mode: "store", hotCapacity: 8 * MiB });
  const found = new Set((await tiered.client.list()).map((info) => info.id));
  for (const id of sealed) {
    assert(found.has(id), `sealed object ${id} was lost`);
    await assertPattern(tiered.client, id);
  }
  assertEquals(await names(join(dir.path, "tmp")), []);
});
