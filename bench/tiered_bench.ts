/**
 * TieredPeer benchmarks, each against a baseline measured in the same run:
 *
 * - Demotion throughput: objects in memory demoted to disk, against writing
 *   the same bytes to one file in the same directory from a buffer already
 *   touched, with an fsync after each object's worth as demotion has. The
 *   figure is the median ratio of rounds that alternate which goes first.
 *   Each measurement starts after a `sync` and a pause, so that neither side
 *   pays for what the other left to the disk.
 * - `create` latency while memory sits above its high watermark under a
 *   steady stream of writes faster than demotion, against `create` on a plain
 *   MemoryPeer under the same stream; and, for information, under a stream
 *   that demotion keeps up with.
 */
import { type Client, connect, MemoryPeer, TieredPeer, type TieredPeerOptions } from "../mod.ts";
import { quantile, report } from "./stats.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const STREAM_SECONDS = 8;

const dataDir = await Deno.makeTempDir({ prefix: "packice-tiered-bench-" });
try {
  const disk = await demotionThroughput();
  await createLatency(disk);
} finally {
  await Deno.remove(dataDir, { recursive: true });
}

/** What the disk did in this run, in bytes/s. */
interface DiskRates {
  /** The slowest round of plain writes: a rate the disk kept up with even then. */
  readonly slowestWrite: number;
  /** The median rate of demotion. */
  readonly demotion: number;
}

/**
 * Reports demotion against a plain write, in rounds that alternate which
 * goes first, as the disk of a VM drifts.
 */
async function demotionThroughput(): Promise<DiskRates> {
  const objectSize = 64 * MiB;
  const count = 8;
  const rounds = 12;
  const touched = new Uint8Array(objectSize).fill(1);
  const baseline: number[] = [];
  const demotion: number[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) baseline.push(await sequentialWrite(touched, count));
    demotion.push(await demoteAll(objectSize, count));
    if (round % 2 === 1) baseline.push(await sequentialWrite(touched, count));
  }
  const ratios = demotion.map((rate, round) => rate / baseline[round]!);
  report({
    bench: "tiered_demotion_throughput",
    object_MiB: objectSize / MiB,
    round_MiB: (objectSize * count) / MiB,
    baseline_write_GBps: quantile(baseline, 0.5) / 1e9,
    demotion_GBps: quantile(demotion, 0.5) / 1e9,
    ratio: quantile(ratios, 0.5),
    ratios: ratios.map((ratio) => ratio.toFixed(2)).join(" "),
    target: ">= 0.8",
  });
  return { slowestWrite: Math.min(...baseline), demotion: quantile(demotion, 0.5) };
}

/** Bytes per second of writing `count` copies of `bytes` to one file, with an fsync after each. */
async function sequentialWrite(bytes: Uint8Array, count: number): Promise<number> {
  const path = `${dataDir}/baseline-${crypto.randomUUID()}`;
  await settleDisk();
  const start = performance.now();
  {
    using file = await Deno.open(path, { write: true, createNew: true });
    for (let i = 0; i < count; i++) {
      for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
      await file.sync();
    }
  }
  const seconds = (performance.now() - start) / 1000;
  await Deno.remove(path);
  return (bytes.length * count) / seconds;
}

/**
 * Bytes per second of demoting `count` objects: memory holds them all until
 * the last one's creation passes the high watermark, then demotes to nothing.
 * No memory is kept ready for new objects, so that none is made meanwhile.
 */
async function demoteAll(objectSize: number, count: number): Promise<number> {
  const dir = `${dataDir}/demote-${crypto.randomUUID()}`;
  const total = objectSize * count;
  const options: TieredPeerOptions = {
    dir,
    hotCapacity: total,
    coldCapacity: 2 * total,
    highWatermark: (total - objectSize / 2) / total,
    lowWatermark: 0,
    poolBytes: 0,
    sweepInterval: 0,
  };
  let seconds: number;
  {
    await using peer = await TieredPeer.open(options);
    await using client = await connect(peer);
    for (let i = 0; i < count - 1; i++) await put(client, objectSize, i);
    await settleDisk();
    const start = performance.now();
    await put(client, objectSize, count - 1);
    await peer.settled();
    seconds = (performance.now() - start) / 1000;
    const stats = await peer.tierStats();
    if (stats.demotedBytes !== total || stats.failures !== 0) {
      throw new Error(
        `Demoted ${stats.demotedBytes} of ${total} bytes, ${stats.failures} failures`,
      );
    }
  }
  await Deno.remove(dir, { recursive: true });
  return total / seconds;
}

/**
 * Lets the disk finish what earlier measurements left, so that neither side
 * of a comparison pays for the other: flushes every file system, then waits.
 */
async function settleDisk(): Promise<void> {
  await new Deno.Command("sync").output();
  await new Promise((resolve) => setTimeout(resolve, 500));
}

async function put(client: Client, size: number, fill: number): Promise<void> {
  await using writer = await client.create(size);
  if (writer.buffer) writer.buffer.fill(fill);
  else await writer.write(new Uint8Array(size).fill(fill));
  await writer.seal();
}

/**
 * Reports `create` latency under a steady stream of 4 MiB puts on a tiered
 * peer whose memory has just passed its high watermark, against the same
 * stream on a plain MemoryPeer:
 *
 * - the target: a stream half again as fast as demotion, so that memory
 *   stays above its high watermark and, once full, objects go straight to
 *   disk; `create` times count while memory is above the high watermark;
 * - for information: a stream at a quarter of the slowest plain write of
 *   this run, which demotion keeps up with; memory hovers at the high
 *   watermark, and every `create` counts.
 */
async function createLatency(disk: DiskRates): Promise<void> {
  const runs = [
    {
      bench: "tiered_create_p99_above_high_watermark",
      rate: disk.demotion * 1.5,
      all: false,
      target: "p99 <= 5 ms",
    },
    {
      bench: "tiered_create_p99_demotion_keeps_up",
      rate: disk.slowestWrite / 4,
      all: true,
      target: "none (information)",
    },
  ];
  const payload = new Uint8Array(4 * MiB).fill(7);
  for (const { bench, rate, all, target } of runs) {
    const baseline = await memoryStream(payload, rate);
    const { run, stats } = await tieredStream(payload, rate, all);
    const p99 = quantile(run.times, 0.99);
    report({
      bench,
      object_MiB: payload.length / MiB,
      stream_MBps: run.rate / 1e6,
      creates_measured: run.times.length,
      placed_on_disk: run.onDisk,
      demotions: stats.demotions,
      baseline_memory_p99_ms: quantile(baseline, 0.99),
      p50_ms: quantile(run.times, 0.5),
      p99_ms: p99,
      max_ms: Math.max(...run.times),
      ratio: p99 / quantile(baseline, 0.99),
      target,
    });
  }
}

/** `create` times of the same stream on a plain MemoryPeer, with nothing moving underneath. */
async function memoryStream(payload: Uint8Array, rate: number): Promise<number[]> {
  await using peer = new MemoryPeer({ capacity: 2 * GiB, sweepInterval: 0 });
  await using client = await connect(peer);
  return (await stream(client, payload, rate, STREAM_SECONDS, () => true, true)).times;
}

/**
 * A burst takes the memory of a fresh tiered peer past its high watermark,
 * then the stream runs; `create` times count while memory is above it, or
 * all of them. The low watermark is the high one, so that demotion frees
 * only what the stream brings, as in a busy steady state.
 */
async function tieredStream(payload: Uint8Array, rate: number, all: boolean) {
  const hotCapacity = 256 * MiB;
  await using peer = await TieredPeer.open({
    dir: `${dataDir}/latency-${crypto.randomUUID()}`,
    hotCapacity,
    coldCapacity: 64 * GiB,
    highWatermark: 0.9,
    lowWatermark: 0.9,
    sweepInterval: 0,
  });
  await using client = await connect(peer);
  const above = async () => (await peer.tierStats()).hot.bytes > 0.9 * hotCapacity;
  while (!await above()) await client.put(payload);
  const run = await stream(client, payload, rate, STREAM_SECONDS, all ? () => true : above, false);
  await peer.settled();
  return { run, stats: await peer.tierStats() };
}

/**
 * A steady stream of puts of `payload` at `rate` bytes per second, each
 * object written and sealed while the next ones start (up to 8 at a time),
 * for `seconds`. Returns how long each `create` took, in ms, of those that
 * started while `measure` held.
 */
async function stream(
  client: Client,
  payload: Uint8Array,
  rate: number,
  seconds: number,
  measure: () => Promise<boolean> | boolean,
  deleteAfter: boolean,
): Promise<{ times: number[]; rate: number; onDisk: number }> {
  const times: number[] = [];
  const writing = new Set<Promise<void>>();
  const interval = (payload.length / rate) * 1000;
  const start = performance.now();
  let onDisk = 0;
  let count = 0;
  for (; performance.now() - start < seconds * 1000; count++) {
    const wait = start + count * interval - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const counted = await measure();
    const begin = performance.now();
    const writer = await client.create(payload.length);
    if (counted) times.push(performance.now() - begin);
    const done = (async () => {
      if (writer.buffer) {
        writer.buffer.set(payload);
      } else {
        onDisk++;
        await writer.write(payload);
      }
      await writer.seal();
      if (deleteAfter) await client.delete(writer.id);
    })();
    writing.add(done);
    done.finally(() => writing.delete(done));
    if (writing.size >= 8) await Promise.race(writing);
  }
  await Promise.all(writing);
  const elapsed = (performance.now() - start) / 1000;
  return { times, rate: (count * payload.length) / elapsed, onDisk };
}
