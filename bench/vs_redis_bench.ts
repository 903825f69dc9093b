/**
 * Packice against `redis-server`, each on a Unix socket on this machine, with
 * 4 KiB values and 32 connections, the same load shape on both sides:
 *
 * - Redis: `redis-benchmark -s SOCK -c 32 -d 4096 -P IN_FLIGHT -q` (one C thread),
 *   GET of one key, SET of random keys, DEL of random keys;
 * - Packice: the daemon (`deno run cli.ts serve`) and a load client process
 *   holding 32 connections, each a client as users get one (`connect(socket)`)
 *   with IN_FLIGHT requests in flight: `get` and `close` of one object;
 *   `put` (create, write, seal, release) of new ones; `put` then `delete`.
 *
 * At one in flight the load client is one process, as redis-benchmark is
 * ({@link processesFor}). Split over two processes it spent about 2 µs of
 * CPU more a put than one process holding the same 32 connections, at any
 * load of the machine: the cost of a second client process (its own V8
 * heap, JIT and background threads, more sleeps for fewer replies each),
 * not of the daemon, which the line is there to measure. That shape is
 * still printed beside it, for information
 * (`vs_redis_put_4KiB_p1_two_processes`, no target). At 16 in flight one
 * JS thread would be the bottleneck (gets reach 660k/s at 1.3–1.5 µs of
 * client CPU each: 0.9–1.0 of a CPU), so the load is split over two processes
 * there: a client that saturates its own thread measures the client.
 * Each load process runs for {@link WARM_MS} before it is timed, puts too,
 * so that V8 has optimized its paths (what it put is deleted first).
 * Both sides' CPU per operation comes from /proc/PID/stat (utime + stime) of
 * the server and of the client processes over the timed window. Rounds
 * alternate the two sides; each figure is the median of its rounds.
 *
 * Targets: gets >= 1.0x Redis GET, puts >= 1.0x Redis SET, puts then deletes
 * >= 0.5x Redis SET+DEL (a pair's rate from the two: 1 / (1/SET + 1/DEL)).
 * Without redis-server or redis-benchmark it installs nothing and says it
 * skipped the pair.
 *
 * Child role (spawned by this script): `load SOCKET MODE CONNECTIONS IN_FLIGHT LIMIT`.
 */
import { type Client, connect } from "../mod.ts";
import { cpuMs, installed, median, startDaemon, statCpuMs, stop } from "./processes.ts";
import { report } from "./stats.ts";

const CONNECTIONS = 32;
const VALUE = 4096;
/**
 * Packice load processes sharing the 32 connections, by requests in flight:
 * one as redis-benchmark at one in flight, two where one would saturate.
 */
function processesFor(inFlight: number): number {
  return inFlight === 1 ? 1 : 2;
}
/** Milliseconds a load process runs before it is timed. */
const WARM_MS = 500;
/** Requests in flight per connection: 1 (one at a time) and a pipeline. */
const PIPELINES = [1, 16];
const ROUNDS = 3;
/** Milliseconds a timed get or put-then-delete run lasts. */
const RUN_MS = 2000;
/**
 * Puts per put run: about a second at the rates measured, so that a run is
 * long beside the 10 ms ticks of CPU time. Every put's object stays: the
 * runs of a bench together hold some 2.5 GiB, under the daemon's 4 GiB, so
 * no eviction is measured (Redis's SETs overwrite one key).
 */
const PUTS = 100_000;
/** Requests per redis-benchmark run. */
const REDIS_REQUESTS = 200_000;

type Mode = "get" | "put" | "putdel";

/** One timed run of one side: operations per second and CPU ms per operation. */
interface Run {
  readonly opsPerSecond: number;
  readonly serverCpuUs: number;
  readonly clientCpuUs: number;
}

async function main(): Promise<void> {
  const missing = ["redis-server", "redis-benchmark"].filter((tool) => !installed(tool));
  if (missing.length > 0) {
    console.error(
      `${missing.join(" and ")} not found: skipping Packice vs Redis (installs nothing)`,
    );
    report({ bench: "vs_redis", skipped: `${missing.join(", ")} not installed` });
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "packice-vs-redis-" });
  const redisSocket = `${dir}/redis.sock`;
  const daemonSocket = `${dir}/daemon.sock`;
  const redis = new Deno.Command("redis-server", {
    args: ["--port", "0", "--unixsocket", redisSocket, "--unixsocketperm", "700"]
      .concat(["--save", "", "--appendonly", "no", "--dir", dir]),
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const daemon = await startDaemon(daemonSocket);
  try {
    await untilAnswering(redisSocket);
    // The key every GET reads: redis-benchmark's literal key without -r.
    await redisBenchmark(redisSocket, redis.pid, ["-t", "set"], 1, 1000);
    for (const inFlight of PIPELINES) {
      const figures = { get: [] as Run[], put: [] as Run[], putdel: [] as Run[] };
      const processes = processesFor(inFlight);
      const twoProcesses: Run[] = [];
      const baseline = { get: [] as Run[], set: [] as Run[], del: [] as Run[] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const mode of ["get", "put", "putdel"] as const) {
          figures[mode].push(await packice(daemonSocket, daemon.pid, mode, inFlight, processes));
        }
        if (processes === 1) {
          twoProcesses.push(await packice(daemonSocket, daemon.pid, "put", 1, 2));
        }
        const run = (args: string[]) => redisBenchmark(redisSocket, redis.pid, args, inFlight);
        baseline.get.push(await run(["-t", "get"]));
        baseline.set.push(await run(["-t", "set", "-r", "1000000"]));
        baseline.del.push(await run(["-r", "1000000", "DEL", "key:__rand_int__"]));
      }
      const ours = (mode: Mode) => medianRun(figures[mode]);
      const set = medianRun(baseline.set);
      const del = medianRun(baseline.del);
      const pair: Run = {
        opsPerSecond: 1 / (1 / set.opsPerSecond + 1 / del.opsPerSecond),
        serverCpuUs: set.serverCpuUs + del.serverCpuUs,
        clientCpuUs: set.clientCpuUs + del.clientCpuUs,
      };
      const shape = { connections: CONNECTIONS, in_flight: inFlight, client_processes: processes };
      versus(`vs_redis_get_4KiB_p${inFlight}`, ours("get"), medianRun(baseline.get), 1, shape);
      versus(`vs_redis_put_4KiB_p${inFlight}`, ours("put"), set, 1, shape);
      if (twoProcesses.length > 0) {
        versus("vs_redis_put_4KiB_p1_two_processes", medianRun(twoProcesses), set, undefined, {
          ...shape,
          client_processes: 2,
        });
      }
      versus(`vs_redis_put_delete_4KiB_p${inFlight}`, ours("putdel"), pair, 0.5, shape);
    }
  } finally {
    await stop(daemon);
    await stop(redis);
    await Deno.remove(dir, { recursive: true });
  }
}

/** Reports one line; with no `target`, for information. */
function versus(
  bench: string,
  ours: Run,
  redis: Run,
  target: number | undefined,
  shape: Record<string, number>,
): void {
  report({
    bench,
    ops_per_s: ours.opsPerSecond,
    baseline_redis_ops_per_s: redis.opsPerSecond,
    ratio: ours.opsPerSecond / redis.opsPerSecond,
    target: target === undefined ? "none (information)" : `>= ${target}`,
    server_cpu_us_per_op: ours.serverCpuUs,
    client_cpu_us_per_op: ours.clientCpuUs,
    baseline_server_cpu_us_per_op: redis.serverCpuUs,
    baseline_client_cpu_us_per_op: redis.clientCpuUs,
    ...shape,
  });
}

/** The run of median throughput, with its CPU figures. */
function medianRun(runs: Run[]): Run {
  const rate = median(runs.map((run) => run.opsPerSecond));
  return runs.find((run) => run.opsPerSecond === rate)!;
}

/** Polls with PING until Redis answers on its socket. */
async function untilAnswering(socket: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const conn = await Deno.connect({ transport: "unix", path: socket });
      try {
        await conn.write(new TextEncoder().encode("PING\r\n"));
        const reply = new Uint8Array(16);
        if ((await conn.read(reply) ?? 0) > 0) return;
      } finally {
        conn.close();
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`redis-server did not answer on ${socket}`);
}

/**
 * One redis-benchmark run; its CPU is read by a shell that waits for it
 * (the `cutime`/`cstime` of the shell's own /proc/PID/stat).
 */
async function redisBenchmark(
  socket: string,
  serverPid: number,
  args: string[],
  inFlight: number,
  requests = REDIS_REQUESTS,
): Promise<Run> {
  const flags = ["-s", socket, "-c", String(CONNECTIONS), "-d", String(VALUE)]
    .concat(["-P", String(inFlight), "-n", String(requests), "-q"]);
  const before = cpuMs(serverPid);
  const output = await new Deno.Command("sh", {
    args: ["-c", 'redis-benchmark "$@" && cat /proc/$$/stat', "sh", ...flags, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const serverMs = cpuMs(serverPid) - before;
  const text = new TextDecoder().decode(output.stdout);
  const rate = Number(/: ([\d.]+) requests per second/.exec(text)?.[1]);
  const clientMs = statCpuMs(text, true);
  if (!output.success || !Number.isFinite(rate)) {
    throw new Error(`Cannot read redis-benchmark ${args.join(" ")}: ${text}`);
  }
  return {
    opsPerSecond: rate,
    serverCpuUs: (serverMs * 1000) / requests,
    clientCpuUs: (clientMs * 1000) / requests,
  };
}

/** What a load child prints when its run ends. */
interface LoadResult {
  readonly ops: number;
  readonly ms: number;
  readonly cpuMs: number;
}

/** One timed run of `processes` load children against the daemon. */
async function packice(
  socket: string,
  daemonPid: number,
  mode: Mode,
  inFlight: number,
  processes: number,
) {
  const self = new URL(import.meta.url).pathname;
  const limit = mode === "put" ? Math.ceil(PUTS / processes) : 0;
  const children = Array.from({ length: processes }, (_, i) => {
    const connections = Math.floor(CONNECTIONS / processes) + (i < CONNECTIONS % processes ? 1 : 0);
    return new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", self, "load", socket, mode, String(connections), String(inFlight)]
        .concat(String(limit)),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  });
  const lines = children.map((child) => lineReader(child.stdout));
  for (const next of lines) if (await next() !== "ready") throw new Error("A load child failed");
  const before = cpuMs(daemonPid);
  const writers = children.map((child) => child.stdin.getWriter());
  await Promise.all(writers.map((writer) => writer.write(new TextEncoder().encode("go\n"))));
  const results: LoadResult[] = await Promise.all(
    lines.map(async (next) => JSON.parse(await next() ?? "null")),
  );
  const serverMs = cpuMs(daemonPid) - before;
  // Children clean up (delete what they put) once told, then exit.
  await Promise.all(writers.map((writer) => writer.close()));
  await Promise.all(children.map((child) => child.status));
  const ops = results.reduce((sum, r) => sum + r.ops, 0);
  const ms = Math.max(...results.map((r) => r.ms));
  return {
    opsPerSecond: ops / (ms / 1000),
    serverCpuUs: (serverMs * 1000) / ops,
    clientCpuUs: (results.reduce((sum, r) => sum + r.cpuMs, 0) * 1000) / ops,
  };
}

/** Reads a stream line by line; undefined at its end. */
function lineReader(stream: ReadableStream<Uint8Array>): () => Promise<string | undefined> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return async () => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) return undefined;
      buffered += value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
}

/**
 * The load role: `connections` clients with `inFlight` loops each; warms up,
 * prints `ready`, runs on `go` (for {@link RUN_MS}, or `limit` operations),
 * prints its {@link LoadResult}, then deletes what it put once stdin closes.
 */
async function load(
  socket: string,
  mode: Mode,
  connections: number,
  inFlight: number,
  limit: number,
): Promise<void> {
  // Each client as users get one, with a connection of its own.
  const pool = await Promise.all(Array.from({ length: connections }, () => connect(socket)));
  const payload = new Uint8Array(VALUE).fill(7);
  const shared = "vs-redis-get";
  if (!await pool[0]!.has(shared)) {
    await pool[0]!.put(payload, { id: shared }).catch(() => {}); // Another child may win.
  }
  const kept: Array<[Client, string]> = [];
  const ops: Record<Mode, (client: Client) => Promise<unknown>> = {
    // What `using` does, spelled out: Deno's transpiled `using` allocates more than a get.
    get: async (client) => {
      const handle = await client.get(shared);
      try {
        if (handle.bytes.length !== VALUE) throw new Error("Wrong size");
      } finally {
        handle.close();
      }
    },
    put: async (client) => kept.push([client, await client.put(payload)]),
    putdel: async (client) => await client.delete(await client.put(payload)),
  };
  const op = ops[mode];
  const loops = (until: () => boolean, counter: { done: number }) =>
    Promise.all(pool.flatMap((client) =>
      Array.from({ length: inFlight }, async () => {
        while (until()) {
          await op(client);
          counter.done++;
        }
      })
    ));

  // Warm up for a while, so that V8 has optimized the paths before timing.
  const warm = { done: 0 };
  const warmEnd = performance.now() + WARM_MS;
  await loops(() => performance.now() < warmEnd, warm);
  await cleanUp(kept);

  const lines = lineReader(Deno.stdin.readable);
  console.log("ready");
  await lines();
  const counter = { done: 0 };
  const cpuBefore = cpuMs("self");
  const start = performance.now();
  const end = start + RUN_MS;
  let started = 0;
  await loops(() => limit === 0 ? performance.now() < end : started++ < limit, counter);
  const ms = performance.now() - start;
  console.log(JSON.stringify({ ops: counter.done, ms, cpuMs: cpuMs("self") - cpuBefore }));
  await lines();
  await cleanUp(kept);
  await Promise.all(pool.map((client) => client.close()));
}

/** Deletes what a put run stored, a few at a time per client. */
async function cleanUp(kept: Array<[Client, string]>): Promise<void> {
  const all = kept.splice(0);
  for (let at = 0; at < all.length; at += 256) {
    await Promise.all(all.slice(at, at + 256).map(([client, id]) => client.delete(id)));
  }
}

if (import.meta.main) {
  const [role, ...args] = Deno.args;
  if (role === "load") {
    const [socket, mode, connections, inFlight, limit] = args;
    await load(socket!, mode as Mode, Number(connections), Number(inFlight), Number(limit));
  } else {
    await main();
  }
}
