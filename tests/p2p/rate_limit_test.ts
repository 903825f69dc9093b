import { assert } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemon } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { connect } from "../../mod.ts";

const RATE = 25e6;

Deno.test(
  "a daemon's upload and download rate limits hold a transfer within 10% of the limit",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-rate-" });
    try {
      await using a = await startClusterDaemon(redis.url, dir, "a", "cluster", [
        "--max-upload-rate",
        "25MB",
        "--max-uploads",
        "2",
      ]);
      await using b = await startClusterDaemon(redis.url, dir, "b");
      await using c = await startClusterDaemon(redis.url, dir, "c", "cluster", [
        "--max-download-rate",
        "25MB",
      ]);
      const bytes = pattern(64 << 20, 11);
      {
        await using client = await connect(a.socket);
        await client.put(bytes, { id: "capped" });
      }
      // b from a alone: a's upload limit; then c from a and b: c's download limit.
      for (const daemon of [b, c]) {
        await using client = await connect(daemon.socket);
        const started = performance.now();
        using handle = await client.get("capped");
        const rate = bytes.length / ((performance.now() - started) / 1000);
        assert(sameBytes(handle.bytes, bytes));
        assert(Math.abs(rate / RATE - 1) <= 0.1, `${daemon.node}: ${(rate / 1e6).toFixed(1)} MB/s`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
