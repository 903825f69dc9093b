/**
 * The soak: a real daemon (memory, then files, then tiers) under mixed
 * operations from several client processes, half on its Unix socket and half
 * on HTTP, every read checked against the digest recorded at its put, while
 * the daemon's RSS and fd count are sampled every second. Fails when a read
 * returns other bytes, an operation fails unexpectedly (INTERNAL, a 500, any
 * code but CAPACITY_EXCEEDED on a put), the daemon logs an error or dies,
 * memory or fds grow once warm, or anything is left once the clients are gone.
 *
 * `deno task soak [--seconds 180] [--impls mem,fs,tiered] [--workers 4]
 * [--lanes 2] [--max-size 64MiB] [--json soak-report.json]`; the seconds are
 * shared among the kinds of daemon. `tests/soak/soak_test.ts` runs a
 * miniature of it in `deno task test`.
 */
import { parseArgs } from "node:util";
import { connect } from "../../mod.ts";
import { parseSize } from "../../daemon/size.ts";
import { eventually } from "../helpers/eventually.ts";
import { socketDir, spawnDaemon } from "../helpers/uds_daemon.ts";
import { digestOf, randomBase } from "./content.ts";
import { type FlatBounds, flatness, type Sample, sample, startSampling } from "./sampler.ts";
import type { WorkerConfig, WorkerResult } from "./worker.ts";

/** Where a soaked daemon keeps its objects. */
export type SoakImpl = "mem" | "fs" | "tiered";

/** How to soak. */
export interface SoakOptions {
  /** Seconds of operations per kind of daemon. */
  readonly seconds: number;
  readonly impls: readonly SoakImpl[];
  /** Client processes per daemon, alternately on the socket and on HTTP. */
  readonly workers: number;
  /** Operation loops per client process. */
  readonly lanes: number;
  /** The largest object. */
  readonly maxSize: number;
  readonly bounds: FlatBounds;
}

/** What one daemon went through. */
export interface PhaseReport {
  readonly impl: SoakImpl;
  readonly seconds: number;
  readonly ops: Record<string, number>;
  readonly bytesChecked: number;
  readonly bytesWritten: number;
  readonly refused: number;
  readonly failureCount: number;
  readonly internal: number;
  /** The first failures, and everything else that makes the phase fail. */
  readonly failures: string[];
  readonly rss: { readonly min: number; readonly max: number; readonly final: number };
  readonly anon: { readonly min: number; readonly max: number; readonly final: number };
  readonly fds: { readonly min: number; readonly max: number; readonly final: number };
  /** Fds of the idle daemon before the clients started. */
  readonly fdsBefore: number;
  readonly samples: readonly Sample[];
}

const MiB = 2 ** 20;
const WORKER = new URL("./worker.ts", import.meta.url).pathname;
/** Ids per lane. */
const SLOTS = 6;
/** Fds an idle, empty daemon may hold beyond those it held before the clients came. */
const IDLE_FD_SLACK = 4;
/** How long the daemon keeps unused prepared memory before giving it back, plus a margin. */
const POOL_IDLE_MS = 3_000;

function implFlags(impl: SoakImpl, dir: string): string[] {
  switch (impl) {
    case "mem":
      return ["--capacity", "2GiB"];
    case "fs":
      return ["--impl", "fs", "--data-dir", `${dir}/data`, "--capacity", "4GiB"];
    case "tiered":
      // Memory small enough that objects are demoted and promoted all the time.
      return ["--impl", "tiered", "--data-dir", `${dir}/data`, "--hot", "256MiB", "--cold", "4GiB"];
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function runWorker(config: WorkerConfig): Promise<WorkerResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WORKER, JSON.stringify(config)],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  if (!output.success || text === "") {
    const stderr = new TextDecoder().decode(output.stderr);
    throw new Error(`Soak worker ${config.prefix} exited with ${output.code}: ${stderr}`);
  }
  return JSON.parse(text.split("\n").at(-1)!);
}

function range(values: readonly number[], final: number) {
  return { min: Math.min(...values, final), max: Math.max(...values, final), final };
}

/** Soaks one kind of daemon. */
export async function soakPhase(impl: SoakImpl, options: SoakOptions): Promise<PhaseReport> {
  const dir = await socketDir();
  const socket = `${dir}/packice.sock`;
  const port = freePort();
  const token = crypto.randomUUID();
  const failures: string[] = [];
  try {
    await using daemon = await spawnDaemon(socket, [
      "--http",
      `127.0.0.1:${port}`,
      "--token",
      token,
      ...implFlags(impl, dir),
    ]);
    let exited = false;
    daemon.process.status.then(() => exited = true);
    const pid = daemon.process.pid;
    await using client = await connect(socket);

    // Objects every worker reads and nobody changes: across processes, on both transports.
    const base = randomBase(Math.min(options.maxSize, 8 * MiB));
    const shared: { id: string; digest: string }[] = [];
    for (const size of [1024, 256 * 1024, base.length]) {
      const bytes = base.subarray(0, size);
      const id = await client.put(bytes, { id: `shared.${size}` });
      shared.push({ id, digest: digestOf(bytes) });
    }
    const fdsBefore = (await sample(pid, 0)).fds;

    const sampling = startSampling(pid);
    const start = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: options.workers }, (_, i) =>
        runWorker({
          target: i % 2 === 0 ? socket : `http://127.0.0.1:${port}`,
          token,
          prefix: `w${i}${i % 2 === 0 ? "uds" : "http"}`,
          seconds: options.seconds,
          lanes: options.lanes,
          slots: SLOTS,
          maxSize: options.maxSize,
          shared,
        })),
    );
    const seconds = (performance.now() - start) / 1000;
    const samples = await sampling.stop();

    const ops: Record<string, number> = {};
    let bytesChecked = 0, bytesWritten = 0, refused = 0, failureCount = 0, internal = 0;
    for (const result of results) {
      if (result.status === "rejected") {
        failures.push(String(result.reason));
        continue;
      }
      const worker = result.value;
      for (const [kind, count] of Object.entries(worker.ops)) ops[kind] = (ops[kind] ?? 0) + count;
      bytesChecked += worker.bytesChecked;
      bytesWritten += worker.bytesWritten;
      refused += worker.refused;
      failureCount += worker.failureCount;
      internal += worker.internal;
      failures.push(...worker.failures);
    }
    // The workers count their own failures; each other line is one.
    const reported = results.reduce(
      (sum, r) => sum + (r.status === "fulfilled" ? r.value.failures.length : 0),
      0,
    );

    // The shared objects unchanged, then nothing left once they are deleted.
    for (const { id, digest } of shared) {
      using handle = await client.get(id);
      if (digestOf(handle.bytes) !== digest) failures.push(`shared object ${id} changed`);
      await client.delete(id);
    }
    const left = await client.list();
    if (left.length > 0) {
      failures.push(`objects left after the clients: ${left.map((info) => info.id).join(", ")}`);
    }
    await eventually(async () => (await client.peer.stats()).leases === 0, "leases end", {
      timeout: 10_000,
      interval: 100,
    }).catch((error) => failures.push(String(error)));
    // Idle long enough for prepared memory to be given back.
    await new Promise((resolve) => setTimeout(resolve, POOL_IDLE_MS));
    const final = await sample(pid, Math.round(performance.now() - start));

    const flat = flatness(samples, options.bounds);
    failures.push(...flat.problems);
    // Idle and empty, the daemon holds what it held before: its own fds and this client's.
    if (final.fds > fdsBefore + IDLE_FD_SLACK) {
      failures.push(`fds went from ${fdsBefore} before the clients to ${final.fds} when idle`);
    }
    // An error it logged is a failure; a warning (a client disconnected for what it sent) too.
    const logged = daemon.stderr().split("\n").filter((line) => / (ERROR|WARN) /.test(line));
    failures.push(...logged.slice(0, 10).map((line) => `daemon logged: ${line}`));
    if (exited) failures.push(`the daemon died: ${daemon.stderr()}`);
    await client.close();
    const status = await daemon.stop();
    if (status.code !== 0) failures.push(`the daemon exited with ${status.code}`);

    return {
      impl,
      seconds,
      ops,
      bytesChecked,
      bytesWritten,
      refused,
      failureCount: failureCount + failures.length - reported,
      internal,
      failures,
      rss: range(samples.map((s) => s.rss), final.rss),
      anon: range(samples.map((s) => s.anon), final.anon),
      fds: range(samples.map((s) => s.fds), final.fds),
      fdsBefore,
      samples,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * What "flat" allows in a soak: the last third's max RSS within 20% plus two
 * of the largest objects of the middle third's (the objects alive at a peak
 * differ from one third to the next), and its max fd count within the fds of
 * every object the clients may hold at once (a memfd each in memory), a
 * connection per lane, and 16 more.
 */
export function soakBounds(workers: number, lanes: number, maxSize: number): FlatBounds {
  return {
    memoryRatio: 0.2,
    memorySlack: 2 * maxSize,
    fdSlack: workers * lanes * (SLOTS + 1) + 16,
  };
}

/** Soaks each kind of daemon in turn. */
export async function runSoak(options: SoakOptions): Promise<PhaseReport[]> {
  const reports = [];
  for (const impl of options.impls) reports.push(await soakPhase(impl, options));
  return reports;
}

/** The report as text tables: operations per kind, then checks and resources per daemon. */
export function formatReport(reports: readonly PhaseReport[]): string {
  const mib = (bytes: number) => (bytes / MiB).toFixed(0);
  const kinds = [...new Set(reports.flatMap((r) => Object.keys(r.ops)))].sort();
  const table = (header: string[], rows: string[][]) => {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (cells: string[]) =>
      `| ${
        cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)).join(
          " | ",
        )
      } |`;
    return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)]
      .join("\n");
  };
  const impls = reports.map((r) => r.impl);
  const opsTable = table(["operation", ...impls], [
    ...kinds.map((kind) => [kind, ...reports.map((r) => String(r.ops[kind] ?? 0))]),
    ["total", ...reports.map((r) => String(Object.values(r.ops).reduce((a, b) => a + b, 0)))],
  ]);
  const row = (name: string, value: (r: PhaseReport) => string) => [name, ...reports.map(value)];
  const summary = table(["", ...impls], [
    row("seconds", (r) => r.seconds.toFixed(0)),
    row("GiB checked", (r) => (r.bytesChecked / 2 ** 30).toFixed(1)),
    row("GiB written", (r) => (r.bytesWritten / 2 ** 30).toFixed(1)),
    row("refused (capacity)", (r) => String(r.refused)),
    row("failures", (r) => String(r.failureCount)),
    row("INTERNAL", (r) => String(r.internal)),
    row("RSS MiB min/max/final", (r) => `${mib(r.rss.min)}/${mib(r.rss.max)}/${mib(r.rss.final)}`),
    row(
      "RssAnon MiB min/max/final",
      (r) => `${mib(r.anon.min)}/${mib(r.anon.max)}/${mib(r.anon.final)}`,
    ),
    row(
      "fds before, min/max/final",
      (r) => `${r.fdsBefore}, ${r.fds.min}/${r.fds.max}/${r.fds.final}`,
    ),
  ]);
  const failures = reports.flatMap((r) => r.failures.map((f) => `${r.impl}: ${f}`));
  return [opsTable, "", summary, ...(failures.length ? ["", "Failures:", ...failures] : [])]
    .join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: Deno.env.get("PACKICE_SOAK_SECONDS") ?? "180" },
      impls: { type: "string", default: "mem,fs,tiered" },
      workers: { type: "string", default: "4" },
      lanes: { type: "string", default: "2" },
      "max-size": { type: "string", default: "64MiB" },
      json: { type: "string", default: "soak-report.json" },
    },
  });
  const impls = values.impls.split(",") as SoakImpl[];
  for (const impl of impls) {
    if (!["mem", "fs", "tiered"].includes(impl)) throw new TypeError(`Unknown impl: ${impl}`);
  }
  const options: SoakOptions = {
    seconds: Number(values.seconds) / impls.length,
    impls,
    workers: Number(values.workers),
    lanes: Number(values.lanes),
    maxSize: parseSize(values["max-size"]),
    bounds: soakBounds(Number(values.workers), Number(values.lanes), parseSize(values["max-size"])),
  };
  const reports = await runSoak(options);
  console.log(formatReport(reports));
  await Deno.writeTextFile(values.json, JSON.stringify({ options, reports }, null, 2) + "\n");
  console.log(`\nReport written to ${values.json}`);
  if (reports.some((r) => r.failures.length > 0)) Deno.exit(1);
}
