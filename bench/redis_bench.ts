/**
 * Leases through Redis: READ acquire + release on a RedisLeaseStore (one
 * EVALSHA each, auto-pipelined by the client across 32 concurrent callers)
 * against `redis-benchmark -c 32 -t set` on the same server in the same run.
 * One operation is an acquire and its release.
 */
import { RedisLeaseStore } from "../backends/redis/mod.ts";
import { Access, leaseRecord, newId } from "../core/mod.ts";
import { startRedis } from "../tests/helpers/redis_server.ts";
import { quantile, report } from "./stats.ts";

const CALLERS = 32;
const WARMUP_MS = 1000;
const RUN_MS = 2000;
const ROUNDS = 3;
const SET_REQUESTS = 200_000;

await using redis = await startRedis();
await using leases = await RedisLeaseStore.connect({ url: redis.url, namespace: "bench" });

const id = "bench-object";
const now = Date.now();
const make = leaseRecord(newId(), id, Access.CREATE, undefined, now);
await leases.create(
  { id, state: "CREATING", size: 4096, blobSizes: [4096], meta: { kind: "bench" }, createdAt: now },
  make,
);
await leases.seal(make.id, { sealedAt: now });
await leases.release(make.id);

/** Runs CALLERS loops of acquire + release for `ms`; returns each pair's latency in µs. */
async function run(ms: number): Promise<number[]> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (performance.now() < end) {
        const start = performance.now();
        const lease = leaseRecord(newId(), id, Access.READ, undefined, Date.now());
        await leases.grant(id, lease);
        await leases.release(lease.id);
        latencies.push((performance.now() - start) * 1000);
      }
    }),
  );
  return latencies;
}

/** `redis-benchmark -c 32 -t set` on the same server: SETs per second. */
async function baseline(): Promise<number> {
  const { stdout, success } = await new Deno.Command("redis-benchmark", {
    args: ["-h", "127.0.0.1", "-p", String(redis.port), "-c", String(CALLERS), "-t", "set"]
      .concat(["-n", String(SET_REQUESTS), "-q"]),
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(stdout);
  const rate = Number(/SET: ([\d.]+) requests per second/.exec(text)?.[1]);
  if (!success || !Number.isFinite(rate)) throw new Error(`Cannot read redis-benchmark: ${text}`);
  return rate;
}

// Rounds alternate the two sides, and each keeps its best round, so a burst of
// other work on the machine does not land on one side only.
await run(WARMUP_MS);
let best = { opsPerSecond: 0, latencies: [] as number[] };
let bestBaseline = 0;
for (let round = 0; round < ROUNDS; round++) {
  const started = performance.now();
  const latencies = await run(RUN_MS);
  const opsPerSecond = latencies.length / ((performance.now() - started) / 1000);
  if (opsPerSecond > best.opsPerSecond) best = { opsPerSecond, latencies };
  bestBaseline = Math.max(bestBaseline, await baseline());
}

report({
  bench: "redis_acquire_release",
  ops_per_s: best.opsPerSecond,
  baseline_set_per_s: bestBaseline,
  ratio: best.opsPerSecond / bestBaseline,
  target: 0.5,
  p50_us: quantile(best.latencies, 0.5),
  p99_us: quantile(best.latencies, 0.99),
});
