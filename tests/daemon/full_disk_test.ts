/**
 * A cache daemon whose data directory's file system fills before its byte
 * budget does: it makes room as a full budget would, on a small tmpfs.
 */
import { CapacityExceededError, connect, InternalError } from "../../mod.ts";
import { eventually } from "../helpers/eventually.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

const MiB = 1024 * 1024;

/** Mounts a tmpfs of `size` at `dir` for `fn`, unmounted after; false when this user may not. */
async function onSmallDisk(dir: string, size: string, fn: () => Promise<void>): Promise<boolean> {
  await Deno.mkdir(dir);
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stderr: "null",
  }).output().catch(() => undefined);
  if (!mount?.success) {
    console.log(`skipped: cannot mount a tmpfs (needs root)`);
    return false;
  }
  try {
    await fn();
  } finally {
    await new Deno.Command("umount", { args: ["-l", dir] }).output();
  }
  return true;
}

for (const impl of ["fs", "tiered"]) {
  testInSocketDir(
    `a ${impl} cache daemon on a full disk drops its least recently used objects`,
    async (dir) => {
      const path = `${dir}/p.sock`;
      const data = `${dir}/disk`;
      await onSmallDisk(data, "12m", async () => {
        // Budgets far above the 12 MiB the file system holds.
        const budget = impl === "fs" ? ["--capacity", "1GiB"] : ["--hot", "2MiB", "--cold", "1GiB"];
        await using daemon = await spawnDaemon(path, [
          "--impl",
          impl,
          "--data-dir",
          `${data}/d`,
          ...budget,
        ]);
        await using client = await connect(path);
        const ids: string[] = [];
        for (let i = 0; i < 10; i++) {
          ids.push(await client.put(new Uint8Array(3 * MiB).fill(i + 1)));
        }
        using last = await client.get(ids[9]!);
        assertEquals(last.bytes[3 * MiB - 1], 10);
        assertEquals(await client.has(ids[0]!), false);
        assert((await client.metrics()).evictions_total! >= 1);
        // What a lease holds is never dropped: with the disk full of held objects, refused.
        const held = [];
        for (const id of await client.list()) held.push(await client.get(id.id));
        await assertRejects(
          () => client.put(new Uint8Array(12 * MiB)),
          CapacityExceededError,
        );
        for (const handle of held) handle.close();
        // Said once at start, with what to do.
        const flag = impl === "fs" ? "--capacity" : "--cold";
        const lines = daemon.stderr().trim().split("\n");
        assertEquals(lines.length, 1, daemon.stderr());
        assert(lines[0]!.includes(`WARN ${flag} 1.0 GiB is more than the file system`), lines[0]);
        assert(lines[0]!.includes(`give ${flag} what the disk holds`), lines[0]);
        // Restarted, what it holds counts as room: still a cache that makes room.
        const kept = (await client.list()).length;
        await daemon.stop();
        await using again = await spawnDaemon(path, [
          "--impl",
          impl,
          "--data-dir",
          `${data}/d`,
          ...budget,
        ]);
        await using second = await connect(path);
        assertEquals((await second.list()).length, kept);
        for (let i = 0; i < 4; i++) await second.put(new Uint8Array(3 * MiB));
        assert(again.stderr().includes("objects there"));
      });
    },
  );
}

testInSocketDir("a tiered daemon whose disk turns read-only says so, in its log", async (dir) => {
  const path = `${dir}/p.sock`;
  const data = `${dir}/disk`;
  await onSmallDisk(data, "16m", async () => {
    await using daemon = await spawnDaemon(path, [
      "--impl",
      "tiered",
      "--data-dir",
      `${data}/d`,
      "--hot",
      "4MiB",
      "--cold",
      "8MiB",
    ]);
    await using client = await connect(path);
    await client.put(new Uint8Array(MiB), { id: "before" });
    const remount = (how: string) =>
      new Deno.Command("mount", { args: ["-o", `remount,${how}`, data] }).output();
    await remount("ro");
    try {
      // Above the high watermark: demotions start, and fail.
      for (let i = 0; i < 3; i++) await client.put(new Uint8Array(MiB).fill(i));
      // Too large for memory now: to disk, which refuses.
      const error = await assertRejects(
        () => client.put(new Uint8Array(3 * MiB)),
        InternalError,
      );
      assert(error.message.includes("read-only: remount it read-write"), error.message);
      await eventually(
        () => daemon.stderr().includes("WARN Moving an object between tiers failed"),
        "a failed demotion in the daemon's log",
      );
      using before = await client.get("before");
      assertEquals(before.bytes.length, MiB);
    } finally {
      await remount("rw");
    }
    await daemon.stop();
    for (const line of daemon.stderr().trim().split("\n")) {
      assert(/^\S+Z WARN /.test(line), `a line not from the daemon's log: ${line}`);
    }
  });
});
