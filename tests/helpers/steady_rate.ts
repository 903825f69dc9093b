/**
 * A limit's own rate while a transfer runs, measured so that a loaded
 * machine does not move it: a loaded machine stretches a transfer's start
 * and end (lookups, CREATE, seal) and answers some counter requests late;
 * neither is the limit's doing. Two ways: over the middle three quarters of
 * its bytes, each crossing bracketed by the counter requests around it
 * ({@link middleRate}); or a least-squares line through many counter
 * reads, leaving out those answered far later than most
 * ({@link samplePoints}, {@link fittedRate}): a few late answers move a line
 * through dozens of points little, where they widen a bracket.
 */
import { assert } from "./assert.ts";

/** A counter read between `from` and `to` (ms): `bytes` since the measure began. */
export interface Sample {
  readonly from: number;
  readonly to: number;
  readonly bytes: number;
}

/**
 * When the counter reached `bytes`: after the start of the last request that
 * read fewer, before the end of the first that read as many (the counter only
 * grows). A loaded machine answers some requests late, but not all: the
 * bracket is as tight as the quickest requests around the crossing.
 *
 * @returns The middle of the bracket, and its half width (the error).
 */
export function crossing(samples: readonly Sample[], bytes: number): { ms: number; error: number } {
  let after = -Infinity;
  let before = Infinity;
  for (const sample of samples) {
    if (sample.bytes < bytes) after = Math.max(after, sample.from);
    else before = Math.min(before, sample.to);
  }
  assert(Number.isFinite(after) && Number.isFinite(before), `no samples around ${bytes} bytes`);
  return { ms: (after + before) / 2, error: (before - after) / 2 };
}

/**
 * Reads `counter` every `interval` ms (default 5) while `running` runs (and
 * once after), as bytes past its value before.
 */
export async function sampleWhile(
  counter: () => Promise<number>,
  running: Promise<unknown>,
  interval = 5,
): Promise<Sample[]> {
  const before = await counter();
  const samples: Sample[] = [];
  let done = false;
  const over = running.finally(() => done = true);
  over.catch(() => {});
  do {
    const from = performance.now();
    const bytes = await counter() - before;
    samples.push({ from, to: performance.now(), bytes });
    if (!done) await new Promise((resolve) => setTimeout(resolve, interval));
  } while (!done);
  await over;
  const from = performance.now();
  const bytes = await counter() - before;
  samples.push({ from, to: performance.now(), bytes });
  return samples;
}

/**
 * The rate of the middle three quarters of `total` bytes in `samples`, and
 * whether it is precise: the brackets' widths, the measure's own error, under
 * half the 10% the tests assert.
 */
export function middleRate(
  samples: readonly Sample[],
  total: number,
): { rate: number; precise: boolean; low: number; high: number } {
  const low = total / 8;
  const high = total - low;
  const [start, end] = [crossing(samples, low), crossing(samples, high)];
  const ms = end.ms - start.ms;
  return {
    rate: (high - low) / (ms / 1000),
    precise: start.error + end.error < ms / 20,
    low: start.ms,
    high: end.ms,
  };
}

/** A byte count at a time: `bytes` at `at` ms. */
export interface Point {
  readonly at: number;
  readonly bytes: number;
}

/**
 * The least-squares rate of the points whose bytes are in `[low, high]`:
 * a line through all of them, not through the two that bracket the window,
 * so a few late points (a late answer) move it little;
 * and whether it is precise: ten points at least, and twice its standard
 * error, from the points' scatter about the line, under half the 10% the
 * tests assert.
 */
export function fittedRate(
  points: readonly Point[],
  low: number,
  high: number,
): { rate: number; precise: boolean } {
  const inside = points.filter((point) => point.bytes >= low && point.bytes <= high);
  const n = inside.length;
  // Too few for a line (a loaded machine answered most requests late): not precise.
  if (n < 10) return { rate: NaN, precise: false };
  const meanT = inside.reduce((sum, point) => sum + point.at, 0) / n;
  const meanB = inside.reduce((sum, point) => sum + point.bytes, 0) / n;
  let stt = 0;
  let stb = 0;
  for (const { at, bytes } of inside) {
    stt += (at - meanT) ** 2;
    stb += (at - meanT) * (bytes - meanB);
  }
  const slope = stb / stt;
  let residuals = 0;
  for (const { at, bytes } of inside) residuals += (bytes - meanB - slope * (at - meanT)) ** 2;
  const error = Math.sqrt(residuals / (n - 2) / stt);
  return { rate: slope * 1000, precise: 2 * error < slope / 20 };
}

/**
 * The counter samples as points: each at the middle of its request, but
 * those answered far later than most (over three times the median time, and
 * over 10 ms), whose reading could be from anywhere in a long request.
 */
export function samplePoints(samples: readonly Sample[]): Point[] {
  const widths = samples.map((sample) => sample.to - sample.from).sort((a, b) => a - b);
  const limit = Math.max(10, 3 * (widths[Math.floor(widths.length / 2)] ?? 0));
  return samples
    .filter((sample) => sample.to - sample.from <= limit)
    .map((sample) => ({ at: (sample.from + sample.to) / 2, bytes: sample.bytes }));
}
