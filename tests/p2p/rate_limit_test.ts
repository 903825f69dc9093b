import { assert } from "../helpers/assert.ts";
import { type ClusterDaemon, pattern, sameBytes, startClusterDaemon } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { connect } from "../../mod.ts";

const RATE = 25e6;

/** A daemon's bytes fetched so far (`cluster_fetch_bytes_total`), and when they were read. */
interface Sample {
  readonly ms: number;
  readonly bytes: number;
}

/**
 * The time at which `daemon` had fetched `bytes`, between the two samples
 * around it (each sample's time is the middle of its request).
 */
function crossing(samples: readonly Sample[], bytes: number): number {
  const after = samples.findIndex((sample) => sample.bytes >= bytes);
  assert(after > 0, `no samples around ${bytes} bytes`);
  const a = samples[after - 1]!;
  const b = samples[after]!;
  return a.ms + (b.ms - a.ms) * (bytes - a.bytes) / (b.bytes - a.bytes);
}

/**
 * Reads `id` on `daemon` while sampling what it fetched, and returns the rate
 * of the middle three quarters of the bytes: the limit's own rate, without the
 * fixed cost of a fetch (lookup, metadata, the copy's CREATE, its seal and
 * announce), which grows with the machine's load and is no part of the limit.
 */
async function fetchRate(daemon: ClusterDaemon, id: string, bytes: Uint8Array): Promise<number> {
  const before = (await daemon.metrics()).cluster_fetch_bytes_total ?? 0;
  const samples: Sample[] = [];
  let done = false;
  const sampling = (async () => {
    while (!done) {
      const start = performance.now();
      const fetched = ((await daemon.metrics()).cluster_fetch_bytes_total ?? 0) - before;
      samples.push({ ms: (start + performance.now()) / 2, bytes: fetched });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  try {
    await using client = await connect(daemon.socket);
    using handle = await client.get(id);
    assert(sameBytes(handle.bytes, bytes));
  } finally {
    done = true;
    await sampling;
  }
  samples.push({ ms: Infinity, bytes: Infinity });
  const low = bytes.length / 8;
  const high = bytes.length - low;
  return (high - low) / ((crossing(samples, high) - crossing(samples, low)) / 1000);
}

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
        const rate = await fetchRate(daemon, "capped", bytes);
        assert(Math.abs(rate / RATE - 1) <= 0.1, `${daemon.node}: ${(rate / 1e6).toFixed(1)} MB/s`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
