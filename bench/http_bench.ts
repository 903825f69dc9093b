/**
 * The HTTP transport against bare `Deno.serve` handlers, measured in the same
 * run with the same client:
 *
 * - GET of 64 MiB: Packice streaming an object vs a handler sending a 64 MiB
 *   `Uint8Array` (target >= 0.8x); and the same GET from the server's native
 *   GET listener (`fastGet`, sendfile) vs the same handler.
 * - PUT of 64 MiB: Packice creating and sealing an object vs a handler that
 *   drains the body (target >= 0.7x); and the same PUT into a cluster member
 *   (a `ClusterPeer`, which hashes each object at seal for its content
 *   record) vs into the plain peer: the cost of that hash.
 * - Small requests at 32 connections with wrk, stat (`GET /v1/objects/:id/info`)
 *   and a conditional GET answered 304, vs a handler answering `{"ok":true}`
 *   (target >= 0.5x). (wrk cannot measure HEAD: it waits for the body the
 *   `Content-Length` announces.)
 *
 * Servers run in this process; the large-body client runs in a child process
 * (`fetch`, body streamed and dropped, one request at a time), so server and
 * client each have a core. Each figure is the median of interleaved rounds;
 * the large-body lines also give the CPU time this process (the servers and
 * the peer's background threads) spent per request, which other load on the
 * machine disturbs far less than throughput.
 *
 * Usage: deno run -A bench/http_bench.ts
 */
import process from "node:process";
import { MemoryPeer } from "../peers/memory_peer.ts";
import { ClusterPeer } from "../p2p/cluster_peer.ts";
import type { Directory } from "../p2p/directory.ts";
import { serveHttp } from "../transport/http/server.ts";
import { report } from "./stats.ts";

const SIZE = 64 << 20;
const ROUNDS = 5;
const REQUESTS = 8;
const WRK_SECONDS = 3;

/** How a figure is named in a report, and how its server CPU time per request is had. */
interface Figure {
  readonly unit: string;
  readonly cpu: string;
  readonly perRun: (side: Side) => number;
}

/** 64 MiB transfers: GB/s, and CPU ms per request (the requests and one warm-up). */
const TRANSFER: Figure = {
  unit: "gb_per_s",
  cpu: "server_cpu_ms_per_request",
  perRun: (side) => side.cpuMs / (REQUESTS + 1),
};

/** wrk runs: requests/s, and CPU µs per request. */
const WRK: Figure = {
  unit: "requests_per_s",
  cpu: "server_cpu_us_per_request",
  perRun: (side) => perRequest(side),
};

if (Deno.args[0] === "client") {
  await client(Deno.args[1]!, Deno.args[2]!, Number(Deno.args[3]), Deno.args[4]);
} else {
  await main();
}

async function main(): Promise<void> {
  const payload = new Uint8Array(SIZE);
  crypto.getRandomValues(payload.subarray(0, 65536));
  for (let at = 65536; at < SIZE; at *= 2) payload.copyWithin(at, 0, at);

  const abort = new AbortController();
  const bare = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: abort.signal,
    onListen: () => {},
  }, async (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/bytes") return new Response(payload);
    if (pathname === "/drain") {
      for await (const _ of request.body ?? []) { /* drop */ }
      return new Response(null, { status: 201 });
    }
    return Response.json({ ok: true });
  });
  const bareUrl = `http://127.0.0.1:${bare.addr.port}`;

  await using peer = new MemoryPeer({ capacity: 2 * 1024 ** 3 });
  await using server = serveHttp(peer, { port: 0, fastGet: { port: 0 } });
  const seeded = await fetch(`${server.url}/v1/objects/bench`, { method: "PUT", body: payload });
  if (seeded.status !== 201) {
    throw new Error(`Seeding failed: ${seeded.status} ${await seeded.text()}`);
  }
  await seeded.body?.cancel();

  try {
    const get = await compare(
      () => child("get", `${bareUrl}/bytes`),
      () => child("get", `${server.url}/v1/objects/bench`),
    );
    reportVersus("http_get_64MiB", ">= 0.8", get, TRANSFER);
    const native = await compare(
      () => child("get", `${bareUrl}/bytes`),
      () => child("get", `${server.fastUrl}/v1/objects/bench`),
    );
    reportVersus("http_get_64MiB_native", ">= 0.8", native, TRANSFER);

    const put = await compare(
      () => child("put", `${bareUrl}/drain`),
      () => child("put", `${server.url}/v1/objects/upload`),
    );
    reportVersus("http_put_64MiB", ">= 0.7", put, TRANSFER);

    // A member of a cluster of one: what it adds to a put is the hash at seal.
    await using member = new ClusterPeer({
      home: new MemoryPeer({ capacity: 2 * 1024 ** 3 }),
      replicas: new MemoryPeer({ capacity: 1 << 20 }),
      directory: directoryOfOne(),
      node: "bench",
      address: "http://127.0.0.1:9",
    });
    await using memberServer = serveHttp(member, { port: 0 });
    const hashed = await compare(
      () => child("put", `${server.url}/v1/objects/plain`),
      () => child("put", `${memberServer.url}/v1/objects/member`),
    );
    reportVersus("http_put_64MiB_cluster_member_vs_plain", "report", hashed, TRANSFER);

    if (!await hasWrk()) {
      console.error("wrk not found: skipping the small-request figures");
      return;
    }
    const stat = await compare(
      () => wrk(`${bareUrl}/json`),
      () => wrk(`${server.url}/v1/objects/bench/info`),
    );
    reportVersus("http_stat_32_connections", ">= 0.5", stat, WRK);
    const etag = (await fetch(`${server.url}/v1/objects/bench`, { method: "HEAD" })).headers.get(
      "etag",
    )!;
    const revalidate = await compare(
      () => wrk(`${bareUrl}/json`),
      () => wrk(`${server.url}/v1/objects/bench`, { "if-none-match": etag }),
    );
    reportVersus("http_conditional_get_304_32_connections", ">= 0.5", revalidate, WRK);
  } finally {
    abort.abort();
    await bare.finished;
  }
}

/** The directory of a cluster of one: announces go nowhere, lookups find nothing. */
function directoryOfOne(): Directory {
  return {
    announce: () => Promise.resolve(),
    withdraw: () => Promise.resolve(),
    lookup: () => Promise.resolve(undefined),
    remove: () => Promise.resolve(),
    close: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

/** A figure of one side: its median, and the median CPU time of this process (the servers) per run. */
interface Side {
  readonly value: number;
  readonly cpuMs: number;
}

/** Runs baseline and Packice in alternating rounds; the median of each. */
async function compare(
  bare: () => Promise<number>,
  ours: () => Promise<number>,
): Promise<{ bare: Side; ours: Side }> {
  const bareRuns: Array<[number, number]> = [];
  const ourRuns: Array<[number, number]> = [];
  const run = async (side: () => Promise<number>): Promise<[number, number]> => {
    const before = process.cpuUsage();
    const value = await side();
    const used = process.cpuUsage(before);
    return [value, (used.user + used.system) / 1000];
  };
  for (let round = 0; round < ROUNDS; round++) {
    bareRuns.push(await run(bare));
    ourRuns.push(await run(ours));
  }
  const side = (runs: Array<[number, number]>): Side => ({
    value: median(runs.map(([value]) => value)),
    cpuMs: median(runs.map(([, cpu]) => cpu)),
  });
  return { bare: side(bareRuns), ours: side(ourRuns) };
}

/** Microseconds of server CPU per request of a wrk run, from the medians. */
/** Reports Packice against the baseline: each side's figure, their ratio and its target, and CPU. */
function reportVersus(
  bench: string,
  target: string,
  { bare, ours }: { bare: Side; ours: Side },
  { unit, cpu, perRun }: Figure,
): void {
  report({
    bench,
    [unit]: ours.value,
    [`baseline_${unit}`]: bare.value,
    ratio: ours.value / bare.value,
    target,
    [cpu]: perRun(ours),
    [`baseline_${cpu}`]: perRun(bare),
  });
}

/** Server CPU microseconds per request of a wrk run. */
function perRequest(side: Side): number {
  return (side.cpuMs * 1000) / (side.value * WRK_SECONDS);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** GB/s of the child client doing `mode` against `url`. */
async function child(mode: "get" | "put", url: string): Promise<number> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "client", mode, url, String(REQUESTS)],
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`Bench client failed: ${mode} ${url}`);
  return Number(new TextDecoder().decode(output.stdout).trim());
}

/**
 * The client process: `requests` GETs draining the body, or PUTs of 64 MiB
 * (to `url-<n>`, each object deleted after it is timed), after one warm-up;
 * prints GB/s. With `token`, every request carries it as a bearer token.
 */
async function client(mode: string, url: string, requests: number, token?: string): Promise<void> {
  const body = new Uint8Array(SIZE);
  const headers: HeadersInit = token === undefined ? {} : { authorization: `Bearer ${token}` };
  let elapsed = 0;
  for (let i = -1; i < requests; i++) {
    const target = mode === "put" && url.includes("/v1/") ? `${url}-${i + 1}` : url;
    const start = performance.now();
    const response = await fetch(
      target,
      mode === "put" ? { method: "PUT", body, headers } : { headers },
    );
    let received = 0;
    for await (const chunk of response.body ?? []) received += chunk.length;
    if (!response.ok || (mode === "get" && received !== SIZE)) {
      throw new Error(`${mode} ${target}: HTTP ${response.status}, ${received} bytes`);
    }
    if (i >= 0) elapsed += performance.now() - start;
    if (target !== url) await (await fetch(target, { method: "DELETE", headers })).body?.cancel();
  }
  console.log(String((SIZE * requests) / (elapsed / 1000) / 1e9));
}

async function hasWrk(): Promise<boolean> {
  try {
    return (await new Deno.Command("wrk", { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).code !== 127;
  } catch {
    return false;
  }
}

/** Requests per second of wrk: 1 thread, 32 connections, {@link WRK_SECONDS} seconds. */
async function wrk(url: string, headers: Record<string, string> = {}): Promise<number> {
  const flags = Object.entries(headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]);
  const output = await new Deno.Command("wrk", {
    args: ["-t1", "-c32", `-d${WRK_SECONDS}s`, ...flags, url],
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  const match = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!output.success || match === null || /Non-2xx/.test(text)) {
    throw new Error(`wrk failed on ${url}: ${text}`);
  }
  return Number(match[1]);
}
