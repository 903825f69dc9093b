/** Small helpers shared by the benchmark scripts. */

/** Times `fn` `iterations` times after `warmup` runs; returns each duration in ms. */
export async function timeEach(
  iterations: number,
  fn: () => unknown,
  warmup = Math.min(10, iterations),
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return times;
}

/** The q-quantile (0..1) of a list of numbers. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** What a benchmark ran on: read once, when the script starts. */
export interface Machine {
  /** The CPU's model name, from /proc/cpuinfo. */
  readonly cpu: string;
  /** The CPUs this process may run on. */
  readonly cores: number;
  /** The 1-minute load average when the script started, from /proc/loadavg. */
  readonly load_at_start: number;
}

/** Reads the CPU model, core count and load average; unknown parts say so. */
export function machine(): Machine {
  const read = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return "";
    }
  };
  const cpu = /^model name\s*:\s*(.+)$/m.exec(read("/proc/cpuinfo"))?.[1]?.trim() ?? "unknown";
  const load = Number(read("/proc/loadavg").split(" ")[0]);
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    load_at_start: Number.isFinite(load) ? load : -1,
  };
}

const startedOn = machine();

/**
 * Prints one benchmark result as a JSON line on stdout, with what it ran on
 * (`cpu`, `cores`, `load_at_start`), so figures from two machines are never
 * compared blind.
 */
export function report(result: Record<string, unknown>): void {
  const rounded = Object.fromEntries(
    Object.entries(result).map((
      [k, v],
    ) => [k, typeof v === "number" ? Number(v.toPrecision(4)) : v]),
  );
  console.log(JSON.stringify({ ...rounded, ...startedOn }));
}

/** Runs `fn` for about `ms` milliseconds with `concurrency` loops; returns operations per second. */
export async function throughput(
  ms: number,
  concurrency: number,
  fn: () => Promise<unknown>,
): Promise<number> {
  let done = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await fn();
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}
