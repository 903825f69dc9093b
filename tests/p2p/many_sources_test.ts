import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemons } from "../helpers/cluster.ts";
import { type Proxy, startProxy } from "../helpers/proxy.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { connect } from "../../mod.ts";

/** The directory entry key of `id` in the test namespace. */
const entry = (id: string) => `cluster:dir:{${id}}`;

/** Range requests a proxy forwarded. */
const ranges = (proxy: Proxy) => proxy.requests.filter((request) => request.includes("bytes="));

Deno.test(
  "a fetch draws pieces from several holders at once; one cut off mid-piece costs that piece",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-swarm-" });
    try {
      await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b", "c", "d"]);
      const [a, b, c, d] = daemons;
      const bytes = pattern(48 << 20, 7);
      {
        await using client = await connect(a.socket);
        await client.put(bytes, { id: "shard" });
      }
      for (const daemon of [b, c]) {
        await using client = await connect(daemon.socket);
        using handle = await client.get("shard");
        assert(sameBytes(handle.bytes, bytes));
      }
      // Each holder behind a proxy at 64 MiB/s, so that one alone would be slow;
      // c's proxy dies after its first 2 MiB, in the middle of a piece.
      await using viaA = startProxy(a.url, { rate: 64 << 20 });
      await using viaB = startProxy(b.url, { rate: 64 << 20 });
      await using viaC = startProxy(c.url, {
        rate: 64 << 20,
        onBytes: (sent) => sent >= 2 << 20,
      });
      for (const node of ["a", "b", "c"]) await redis.command("HDEL", entry("shard"), `@${node}`);
      await redis.command("HSET", entry("shard"), "@a", viaA.url);
      await redis.command("HSET", entry("shard"), "@b", viaB.url);
      await redis.command("HSET", entry("shard"), "@c", viaC.url);
      await using client = await connect(d.socket);
      using handle = await client.get("shard");
      assert(sameBytes(handle.bytes, bytes));
      const metrics = await d.metrics();
      assertEquals(metrics.cluster_fetches_total, 1);
      assertEquals(metrics.cluster_source_failures_total, 1);
      // 12 pieces of 4 MiB: both live holders sent several (one after another, only a
      // failure would move a transfer to the next holder, and neither failed), c a few at most.
      const fromA = ranges(viaA).length;
      const fromB = ranges(viaB).length;
      assert(fromA >= 3 && fromB >= 3, `a sent ${fromA} pieces, b ${fromB}`);
      assert(ranges(viaC).length <= 3, ranges(viaC).join("\n"));
      // Bytes received: the object, the cut-off piece's start, and endgame duplicates at most.
      assert(metrics.cluster_fetch_bytes_total! < bytes.length + (12 << 20));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "the endgame asks a second source for a straggling piece and cancels the loser",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-swarm-" });
    try {
      await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b", "c"]);
      const [a, b, c] = daemons;
      const bytes = pattern(32 << 20, 9);
      {
        await using client = await connect(a.socket);
        await client.put(bytes, { id: "tail" });
      }
      {
        await using client = await connect(b.socket);
        using handle = await client.get("tail");
        assert(sameBytes(handle.bytes, bytes));
      }
      // a at 1 MiB/s: a piece of 4 MiB from it alone would take 4 s.
      await using slow = startProxy(a.url, { rate: 1 << 20 });
      await using fast = startProxy(b.url);
      await redis.command("HDEL", entry("tail"), "@a", "@b");
      await redis.command("HSET", entry("tail"), "@a", slow.url, "@b", fast.url);
      await using client = await connect(c.socket);
      const started = performance.now();
      using handle = await client.get("tail");
      const seconds = (performance.now() - started) / 1000;
      assert(sameBytes(handle.bytes, bytes));
      assert(ranges(slow).length >= 1, "the slow source was asked");
      assert(seconds < 3, `${seconds} s: the straggling pieces waited for the slow source`);
      const metrics = await c.metrics();
      // The slow source's pieces came from the fast one too: at most their few bytes twice.
      assert(metrics.cluster_fetch_bytes_total! < bytes.length + (4 << 20));
      assertEquals(metrics.cluster_fetches_total, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "Redis down during a transfer: the transfer already running finishes",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-swarm-" });
    try {
      await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b"]);
      const [a, b] = daemons;
      const bytes = pattern(24 << 20, 17);
      {
        await using client = await connect(a.socket);
        await client.put(bytes, { id: "outage" });
      }
      // 24 MiB at 16 MiB/s: Redis stops once the first 4 MiB are through.
      let stopping: Promise<void> | undefined;
      await using slow = startProxy(a.url, {
        rate: 16 << 20,
        onBytes: async (sent) => {
          if (sent >= 4 << 20) await (stopping ??= redis.stop("SIGKILL"));
        },
      });
      await redis.command("HSET", entry("outage"), "@a", slow.url);
      await using client = await connect(b.socket);
      using handle = await client.get("outage");
      assert(stopping !== undefined, "Redis was stopped midway");
      assert(sameBytes(handle.bytes, bytes));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
