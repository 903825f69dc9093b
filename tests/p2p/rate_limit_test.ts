import { assert } from "../helpers/assert.ts";
import { type ClusterDaemon, pattern, sameBytes, startClusterDaemon } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { connect } from "../../mod.ts";
import { middleRate, sampleWhile } from "../helpers/steady_rate.ts";

const RATE = 25e6;

/**
 * Reads `id` on `daemon` while sampling what it fetched, and returns the rate
 * of the middle three quarters of the bytes: the limit's own rate, without the
 * fixed cost of a fetch (lookup, metadata, the copy's CREATE, its seal and
 * announce), which grows with the machine's load and is no part of the limit.
 */
async function fetchRate(
  daemon: ClusterDaemon,
  id: string,
  bytes: Uint8Array,
): Promise<{ rate: number; precise: boolean }> {
  const fetching = (async () => {
    await using client = await connect(daemon.socket);
    using handle = await client.get(id);
    assert(sameBytes(handle.bytes, bytes));
  })();
  const samples = await sampleWhile(
    async () => (await daemon.metrics()).cluster_fetch_bytes_total ?? 0,
    fetching,
  );
  return middleRate(samples, bytes.length);
}

/** Measurements of one limit: the first precise one is asserted on. */
const ATTEMPTS = 3;

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
      // On a loaded machine a daemon answers some metrics requests late, and a
      // measurement bracketed by late answers alone is measured again, on another object.
      const measured = new Map<string, number>();
      for (let attempt = 0; attempt < ATTEMPTS && measured.size < 2; attempt++) {
        const id = `capped-${attempt}`;
        const bytes = pattern(64 << 20, 11 + attempt);
        {
          await using client = await connect(a.socket);
          await client.put(bytes, { id });
        }
        // b from a alone: a's upload limit; then c from a and b: c's download limit.
        for (const daemon of [b, c]) {
          const { rate, precise } = await fetchRate(daemon, id, bytes);
          if (precise && !measured.has(daemon.node)) measured.set(daemon.node, rate);
        }
        await using client = await connect(a.socket);
        await client.delete(id);
      }
      for (const daemon of [b, c]) {
        const rate = measured.get(daemon.node);
        assert(rate !== undefined, `${daemon.node}: no precise measurement in ${ATTEMPTS}`);
        assert(Math.abs(rate / RATE - 1) <= 0.1, `${daemon.node}: ${(rate / 1e6).toFixed(1)} MB/s`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
