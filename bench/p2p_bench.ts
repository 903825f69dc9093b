/**
 * Fetch on miss between two daemons (`serve --redis --http`, one
 * redis-server), against bare HTTP in the same run:
 *
 * - One fetch-on-miss of a 256 MiB object: a `get` on daemon b of an object
 *   only daemon a holds, until the handle is open (pieces fetched over HTTP,
 *   each piece and the whole verified, sealed, announced), vs a bare
 *   `Deno.serve` handler sending the same 256 MiB to a `fetch` client in a
 *   child process that copies the body into a buffer (target >= 0.8x); with
 *   the CPU time each daemon spent on a fetch (the receiver's and the
 *   holder's, from /proc, medians).
 * - A get of an object already fetched (1 MiB, held on b as a fetched copy)
 *   vs a get of an object put on that daemon: median µs of get + close over
 *   the Unix socket (target: the same, ratio >= 0.8).
 *
 * Each 256 MiB round uses a fresh object, deleted cluster-wide after it.
 *
 * Usage: deno run -A bench/p2p_bench.ts
 */
import { connect } from "../mod.ts";
import { startRedis } from "../tests/helpers/redis_server.ts";
import { pattern, startClusterDaemon } from "../tests/helpers/cluster.ts";
import { cpuMs } from "./processes.ts";
import { quantile, report, timeEach } from "./stats.ts";

const SIZE = 256 << 20;
const ROUNDS = 5;
const GETS = 2000;

if (Deno.args[0] === "client") {
  await client(Deno.args[1]!, Number(Deno.args[2]));
} else {
  await main();
}

/** Fetches `url` `rounds` times, copying each body into one buffer; prints each duration. */
async function client(url: string, rounds: number): Promise<void> {
  const into = new Uint8Array(SIZE);
  for (let round = 0; round <= rounds; round++) {
    const start = performance.now();
    const response = await fetch(url);
    let at = 0;
    for await (const chunk of response.body!) {
      into.set(chunk, at);
      at += chunk.length;
    }
    if (at !== SIZE) throw new Error(`Short body: ${at}`);
    // The first is a warm-up.
    if (round > 0) console.log(performance.now() - start);
  }
}

async function main(): Promise<void> {
  const payload = pattern(SIZE, 42);
  await using redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "packice-p2p-bench-" });
  try {
    const extra = ["--capacity", "1GiB"];
    await using a = await startClusterDaemon(redis.url, dir, "a", "bench", extra);
    await using b = await startClusterDaemon(redis.url, dir, "b", "bench", extra);
    await using onA = await connect(a.socket);
    await using onB = await connect(b.socket);

    const abort = new AbortController();
    const bare = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: abort.signal, onListen: () => {} },
      () => new Response(payload),
    );
    const bareMs: number[] = [];
    const fetchMs: number[] = [];
    const receiverCpuMs: number[] = [];
    const holderCpuMs: number[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        // Interleaved: one bare transfer, then one fetch on miss.
        const output = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            import.meta.filename!,
            "client",
            `http://127.0.0.1:${bare.addr.port}`,
            "1",
          ],
          stdout: "piped",
          stderr: "inherit",
        }).output();
        bareMs.push(Number(new TextDecoder().decode(output.stdout).trim()));
        const id = `big-${round}`;
        await onA.put(payload, { id });
        // What the put leaves running in the background (the client's memfd pool refilling, the
        // holder's digest and announce) is not the fetch's to pay for.
        await new Promise((resolve) => setTimeout(resolve, 500));
        const cpuBefore = [cpuMs(b.pid), cpuMs(a.pid)];
        const start = performance.now();
        const handle = await onB.get(id);
        fetchMs.push(performance.now() - start);
        receiverCpuMs.push(cpuMs(b.pid) - cpuBefore[0]!);
        holderCpuMs.push(cpuMs(a.pid) - cpuBefore[1]!);
        if (handle.size !== SIZE || handle.bytes[SIZE - 1] !== payload[SIZE - 1]) {
          throw new Error("Fetched bytes differ");
        }
        handle.close();
        await onB.delete(id);
      }
    } finally {
      abort.abort();
      await bare.finished;
    }
    const gbPerS = (ms: number) => SIZE / 1e9 / (ms / 1000);
    const bareRate = gbPerS(quantile(bareMs, 0.5));
    const fetchRate = gbPerS(quantile(fetchMs, 0.5));
    report({
      bench: "p2p_fetch_on_miss_256mib",
      fetch_gb_per_s: fetchRate,
      bare_http_gb_per_s: bareRate,
      fetch_ms: quantile(fetchMs, 0.5),
      bare_ms: quantile(bareMs, 0.5),
      ratio: fetchRate / bareRate,
      target: 0.8,
      receiver_cpu_ms: quantile(receiverCpuMs, 0.5),
      holder_cpu_ms: quantile(holderCpuMs, 0.5),
    });

    // Gets: a copy fetched from a vs an object put on b itself.
    const small = pattern(1 << 20, 7);
    await onA.put(small, { id: "fetched" });
    await onB.put(small, { id: "own" });
    (await onB.get("fetched")).close();
    const get = (id: string) => async () => (await onB.get(id)).close();
    const fetched: number[] = [];
    const own: number[] = [];
    for (let round = 0; round < 3; round++) {
      own.push(...await timeEach(GETS / 3, get("own"), 200));
      fetched.push(...await timeEach(GETS / 3, get("fetched"), 200));
    }
    const fetchedUs = quantile(fetched, 0.5) * 1000;
    const ownUs = quantile(own, 0.5) * 1000;
    report({
      bench: "p2p_get_fetched_vs_local",
      fetched_copy_us: fetchedUs,
      local_object_us: ownUs,
      fetched_copy_p99_us: quantile(fetched, 0.99) * 1000,
      local_object_p99_us: quantile(own, 0.99) * 1000,
      ratio: ownUs / fetchedUs,
      target: 0.8,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
