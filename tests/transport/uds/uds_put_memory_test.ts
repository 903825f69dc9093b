/**
 * The memory of small puts answered in C (native/packice.c section 13): its
 * regions are faulted in ahead of the puts by a thread of C's, so that a
 * receive seldom zeroes fresh pages itself; the memory held beyond the
 * objects stays bounded (at most two regions ready ahead), a run of puts
 * faster than the thread still stores every object whole, and a trim gives
 * the regions ready ahead back with the rest.
 */
import { assert, assertEquals } from "../../helpers/assert.ts";
import { udsClient } from "../../helpers/uds_client.ts";
import { MemoryPeer } from "../../../mod.ts";
import { FULL_SEALS } from "../../../backends/memory/seals.ts";
import {
  decodeOpenReply,
  openFrameRoom,
  writeOpenFrame,
} from "../../../transport/uds/open_frame.ts";
import { encodePutFrame } from "../../helpers/uds_frames.ts";
import { RawConnection } from "../../helpers/uds_raw.ts";
import { joinFrames, openFastPath } from "../../helpers/fast_path.ts";
import { openNative } from "../../helpers/native.ts";
import { pattern } from "../../helpers/pattern.ts";
import { servePeer } from "../../helpers/served_peer.ts";
import { socketDir, spawnDaemon } from "../../helpers/uds_daemon.ts";

const native = openNative();
const REGION = 2 * 1024 * 1024;
/** Regions C keeps faulted in ahead, at most. */
const SPARES = 2;

/** The memory figures of a server's metrics. */
function memoryOf(metrics: Record<string, number>) {
  return {
    region: metrics.uds_native_put_memory_bytes!,
    spare: metrics.uds_native_put_spare_bytes!,
    chunks: metrics.uds_native_put_chunk_bytes!,
    ahead: metrics.uds_native_put_regions_ahead_total!,
    inline: metrics.uds_native_put_regions_inline_total!,
  };
}

/** Polls `read` until `done` holds of it, for at most five seconds. */
async function until<T>(read: () => T, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const value = read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test({
  name: "regions for puts in C are faulted in ahead, and the memory beside the objects is bounded",
  ignore: native === undefined,
  async fn() {
    await using daemon = await servePeer(new MemoryPeer());
    await using client = await udsClient(daemon.path);
    const memory = () => memoryOf(daemon.server.metrics());
    assertEquals(memory(), { region: 0, spare: 0, chunks: 0, ahead: 0, inline: 0 });
    const first = await client.put(pattern(4096, 0));
    // The first region is faulted in on the receive; the thread then readies two more.
    const ready = await until(memory, (m) => m.spare === SPARES * REGION);
    assertEquals(ready, {
      region: REGION,
      spare: SPARES * REGION,
      chunks: 4096 + 64,
      ahead: SPARES,
      inline: 1,
    });
    // 1200 objects, in three regions: the receive takes the two ready ahead.
    const ids = [first];
    for (let i = 1; i < 1200; i += 50) {
      const length = Math.min(50, 1200 - i);
      const batch = Array.from({ length }, (_, k) => client.put(pattern(4096, i + k)));
      ids.push(...await Promise.all(batch));
      const m = memory();
      assert(m.spare <= SPARES * REGION, `spares ${m.spare}`);
      // Beyond the chunks: the rest of the newest region, and a chunk's slack per region.
      assert(m.region - m.chunks <= REGION + (m.region / REGION) * 4160, `held ${m.region}`);
    }
    const after = await until(memory, (m) => m.spare === SPARES * REGION);
    assertEquals(after.inline, 1);
    assertEquals(after.region, 3 * REGION);
    assertEquals(after.ahead, 2 + SPARES);
    assertEquals(after.chunks, 1200 * (4096 + 64));
    assertEquals(daemon.puts(), 1200);
    // Every object whole, in memory faulted in by the other thread.
    for (let i = 0; i < ids.length; i += 97) {
      using handle = await client.get(ids[i]!);
      assertEquals(handle.bytes, pattern(4096, i));
    }
  },
});

Deno.test({
  name:
    "puts faster than regions are faulted in ahead are stored whole, the receive faulting its own",
  ignore: native === undefined,
  async fn() {
    await using daemon = await servePeer(new MemoryPeer());
    const clients = await Promise.all(
      Array.from({ length: 8 }, async () => await udsClient(daemon.path)),
    );
    try {
      // 64 KiB objects, 32 to a region, 16 in flight per client: more regions than two ahead.
      const size = 64 * 1024;
      const puts = clients.flatMap((client, c) =>
        Array.from({ length: 48 }, (_, i) => client.put(pattern(size, c * 1000 + i)))
      );
      const ids = await Promise.all(puts);
      assertEquals(daemon.puts(), ids.length);
      const m = await until(
        () => memoryOf(daemon.server.metrics()),
        (m) => m.spare === SPARES * REGION,
      );
      // Each region is counted once, ahead or on the receive, spares apart from those in use.
      assertEquals(m.ahead + m.inline, m.region / REGION + m.spare / REGION);
      assert(m.region >= Math.ceil((ids.length * size) / REGION) * REGION, `${m.region}`);
      assert(m.spare <= SPARES * REGION);
      for (let i = 0; i < ids.length; i += 7) {
        const c = Math.floor(i / 48);
        using handle = await clients[c]!.get(ids[i]!);
        assertEquals(handle.bytes, pattern(size, c * 1000 + (i % 48)));
      }
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  },
});

Deno.test({
  name:
    "a trim gives back the regions ready ahead with the rest, and none is readied until puts resume",
  ignore: native === undefined,
  async fn() {
    const symbols = native!.symbols;
    await using fast = await openFastPath(symbols, 1, "packice-put-memory-");
    const { table, figures } = fast;
    const pair = fast.pairs[0]!;
    assertEquals(symbols.pk_fp_budget(table, 64 * 1024 * 1024, 0, 0), 0);
    const memory = new Float64Array(5);
    const read = () => {
      symbols.pk_fp_put_memory(table, memory);
      return [...memory];
    };
    /** Sends `n` plain PUTs of 4 KiB, has C answer them, and returns the slots C took. */
    const put = (n: number) => {
      const message = joinFrames(
        ...Array.from({ length: n }, (_, i) => encodePutFrame(i + 1, {}, [pattern(4096, i)], 4096)),
      );
      const at = message.length;
      fast.send(pair.client, message);
      const got = fast.recv(pair);
      assertEquals(got, at);
      assertEquals(figures[9], n);
      assertEquals(figures[0], 0); // nothing left to JS
      const slots = fast.takePuts();
      assertEquals(slots.length, n);
      return slots;
    };
    const slots = put(8);
    // Replies read, so the socket has room.
    assert(fast.replies(pair.client) > 0);
    const ready = await until(read, (m) => m[1] === SPARES * REGION);
    assertEquals(ready, [REGION, SPARES * REGION, 8 * (4096 + 64), SPARES, 1]);
    // Every object gone: the trim unmaps the region and the spares.
    for (const slot of slots) {
      symbols.pk_fp_remove(table, slot);
      assertEquals(symbols.pk_fp_unhold(table, slot), 1);
    }
    assertEquals(symbols.pk_fp_trim(table), 1);
    assertEquals(read(), [0, 0, 0, SPARES, 1]);
    // The thread readies none while no put comes.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assertEquals(read().slice(0, 2), [0, 0]);
    // A put takes a region again (on the receive: none is ready), and spares follow.
    const again = put(1);
    const resumed = await until(read, (m) => m[1] === SPARES * REGION);
    assertEquals(resumed, [REGION, SPARES * REGION, 4096 + 64, 2 * SPARES, 2]);
    // With objects left, a trim gives back only the spares.
    assertEquals(symbols.pk_fp_trim(table), 0);
    assertEquals(read().slice(0, 3), [REGION, 0, 4096 + 64]);
    symbols.pk_fp_remove(table, again[0]!);
    symbols.pk_fp_unhold(table, again[0]!);
  },
});

Deno.test({
  name:
    "chunks of deleted objects stored in C are reused whole: puts after deletes take no new region",
  ignore: native === undefined,
  async fn() {
    await using daemon = await servePeer(new MemoryPeer());
    await using client = await udsClient(daemon.path);
    const memory = () => memoryOf(daemon.server.metrics());
    const sizes = [100, 4096, 5000, 65536];
    const putAll = (seed: number) =>
      Promise.all(
        Array.from({ length: 400 }, (_, i) => client.put(pattern(sizes[i % 4]!, seed + i))),
      );
    const first = await putAll(0);
    const held = memory();
    for (const id of first) await client.delete(id);
    assertEquals(memory().chunks, 0);
    const second = await putAll(1000);
    const after = memory();
    assertEquals(after.region, held.region);
    assertEquals(after.chunks, held.chunks);
    for (let i = 0; i < second.length; i++) {
      using handle = await client.get(second[i]!);
      assertEquals(handle.bytes, pattern(sizes[i % 4]!, 1000 + i));
    }
  },
});

Deno.test({
  name:
    "an object stored in C in memory faulted in ahead reaches its first reader as a memfd sealed for good",
  ignore: native === undefined,
  async fn() {
    await using daemon = await servePeer(new MemoryPeer());
    await using client = await udsClient(daemon.path);
    await client.put(pattern(4096, 0));
    await until(() => memoryOf(daemon.server.metrics()), (m) => m.spare === SPARES * REGION);
    // Past the first region: these live in regions the thread faulted in.
    const ids = await Promise.all(
      Array.from({ length: 600 }, (_, i) => client.put(pattern(4096, i))),
    );
    assert(memoryOf(daemon.server.metrics()).ahead >= 1);
    using raw = new RawConnection(daemon.path);
    const id = ids[599]!;
    const room = new Uint8Array(openFrameRoom(id));
    raw.sendRaw(room.subarray(0, writeOpenFrame(room, 1, { objectId: id, known: 0 })));
    const reply = (await raw.receive())!;
    assertEquals(reply.fds.length, 1);
    assert(decodeOpenReply(reply.frames[0]!.body) !== undefined);
    const fd = reply.fds[0]!;
    try {
      const symbols = raw.native.symbols;
      assertEquals(symbols.pk_get_seals(fd) & FULL_SEALS, FULL_SEALS);
      // A client maps the same sealed memfd and reads the bytes put.
      using handle = await client.get(id);
      assertEquals(handle.bytes, pattern(4096, 599));
      assertEquals(daemon.server.metrics().uds_native_open_total, 2);
    } finally {
      raw.native.symbols.pk_close(fd);
    }
  },
});

Deno.test({
  name:
    "clients that close with their puts unanswered: every put C stored is the peer's, counted once",
  ignore: native === undefined,
  async fn() {
    await using daemon = await servePeer(new MemoryPeer());
    // Sixteen clients send 20 PUTs each in one message and go at once, replies unread.
    for (let c = 0; c < 16; c++) {
      const raw = new RawConnection(daemon.path);
      const message = joinFrames(
        ...Array.from(
          { length: 20 },
          (_, i) => encodePutFrame(i + 1, {}, [pattern(4096, c * 100 + i)], 4096),
        ),
      );
      assertEquals(raw.sendRaw(message), message.length);
      raw[Symbol.dispose]();
    }
    // The server reads and stores each message before it sees the close.
    await until(() => daemon.puts() === 320 && daemon.server.connections === 0, (done) => done);
    assertEquals(daemon.server.connections, 0);
    assertEquals(daemon.puts(), 320);
    const stats = await daemon.peer.stats();
    assertEquals([stats.objects, stats.bytes], [320, 320 * 4096]);
    assertEquals(memoryOf(daemon.server.metrics()).chunks, 320 * (4096 + 64));
    // The daemon serves on, and each object reads back whole.
    await using client = await udsClient(daemon.path);
    const objects = await client.list();
    assertEquals(objects.length, 320);
    const expected = new Map<string, Uint8Array>();
    for (let c = 0; c < 16; c++) {
      for (let i = 0; i < 20; i++) {
        const bytes = pattern(4096, c * 100 + i);
        expected.set(bytes.subarray(0, 16).join(), bytes);
      }
    }
    for (const object of objects) {
      using handle = await client.get(object.id);
      const key = handle.bytes.subarray(0, 16).join();
      assertEquals(handle.bytes, expected.get(key));
      expected.delete(key);
    }
    assertEquals(expected.size, 0);
    await client.put(pattern(4096, 9999));
    assertEquals(daemon.puts(), 321);
  },
});

/** How transparent huge pages are set for this machine: "always", "madvise" or "never". */
function hugePages(): string {
  try {
    const text = Deno.readTextFileSync("/sys/kernel/mm/transparent_hugepage/enabled");
    return /\[(\w+)\]/.exec(text)?.[1] ?? "never";
  } catch {
    return "never";
  }
}

/** Kilobytes of a process's anonymous memory in huge pages, from /proc/PID/smaps_rollup. */
function anonHugeKiB(pid: number): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
  return Number(/AnonHugePages:\s+(\d+) kB/.exec(text)?.[1] ?? 0);
}

/** Huge-page faults the kernel served with small pages, machine-wide (/proc/vmstat). */
function thpFallbacks(): number {
  const text = Deno.readTextFileSync("/proc/vmstat");
  return Number(/^thp_fault_fallback (\d+)$/m.exec(text)?.[1] ?? 0);
}

Deno.test({
  name: "a daemon's regions faulted in ahead are huge pages where the kernel gives them on request",
  // With THP off there are no huge pages to ask for: the regions stay in small pages.
  ignore: native === undefined || hugePages() === "never",
  async fn() {
    const dir = await socketDir();
    try {
      await using daemon = await spawnDaemon(`${dir}/packice.sock`, ["--capacity", "256MiB"]);
      const pid = daemon.process.pid;
      const before = anonHugeKiB(pid);
      await using client = await udsClient(daemon.path);
      // The first region is faulted in on the receive (small pages); the thread readies two more.
      const id = await client.put(pattern(4096, 3));
      // A kernel that found no huge page free (fragmented memory) falls back to small ones, as
      // the daemon must then too: only the bytes below are asserted in that case.
      const fallbacks = thpFallbacks();
      const huge = await until(
        () => anonHugeKiB(pid) - before,
        (kib) => kib >= 2048 || thpFallbacks() > fallbacks,
      );
      // The first region made ahead is asked for as a huge page; one that cost over 0.5 ms (a
      // loaded machine) sends the next ones to small pages, so only the first is certain.
      if (thpFallbacks() === fallbacks) assert(huge >= 2048, `${huge} KiB in huge pages`);
      // 1000 more objects fill the first region and go on in those made ahead.
      const ids = [id];
      for (let i = 0; i < 1000; i += 50) {
        ids.push(
          ...await Promise.all(
            Array.from({ length: 50 }, (_, k) => client.put(pattern(4096, 10 + i + k))),
          ),
        );
      }
      for (let i = 1; i < ids.length; i += 99) {
        using handle = await client.get(ids[i]!);
        assertEquals(handle.bytes, pattern(4096, 10 + i - 1));
      }
      await client.close();
      assertEquals((await daemon.stop()).code, 0, daemon.stderr());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
