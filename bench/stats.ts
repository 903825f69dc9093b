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

/** Prints one benchmark result as a JSON line on stdout. */
export function report(result: Record<string, unknown>): void {
  const rounded = Object.fromEntries(
    Object.entries(result).map((
      [k, v],
    ) => [k, typeof v === "number" ? Number(v.toPrecision(4)) : v]),
  );
  console.log(JSON.stringify(rounded));
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
