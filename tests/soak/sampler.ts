/**
 * The daemon's resident memory and open fds, sampled from /proc, and what
 * "flat" means for them.
 */

/** One look at a process. */
export interface Sample {
  /** Milliseconds since sampling started. */
  readonly at: number;
  /** VmRSS in bytes: heap, mapped files and mapped shared memory. */
  readonly rss: number;
  /** RssAnon in bytes: the heap alone, where a leak of JS or native objects shows. */
  readonly anon: number;
  /** Entries of /proc/PID/fd. */
  readonly fds: number;
}

/** Reads one {@link Sample} of process `pid`. */
export async function sample(pid: number, at: number): Promise<Sample> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  let fds = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) fds++;
  return { at, rss: kib("VmRSS"), anon: kib("RssAnon"), fds };
}

/** Samples process `pid` every `intervalMs` until stopped. */
export function startSampling(pid: number, intervalMs = 1000): { stop(): Promise<Sample[]> } {
  const samples: Sample[] = [];
  const start = performance.now();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      samples.push(await sample(pid, Math.round(performance.now() - start)));
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

/** How much the last third may exceed the middle third by. */
export interface FlatBounds {
  /** Relative growth of the max RSS and max RssAnon allowed, e.g. 0.15. */
  readonly memoryRatio: number;
  /** Absolute bytes allowed on top of that ratio. */
  readonly memorySlack: number;
  /** Fds more than the middle third's max allowed. */
  readonly fdSlack: number;
}

/** The verdict on a run's samples. */
export interface Flatness {
  readonly middle: { readonly rss: number; readonly anon: number; readonly fds: number };
  readonly last: { readonly rss: number; readonly anon: number; readonly fds: number };
  /** Empty when flat; else what grew. */
  readonly problems: string[];
}

/**
 * Whether memory and fds stayed flat once warm: the first third of the
 * samples is warm-up (pools filling, code compiling), and the max of the last
 * third may exceed the max of the middle third by at most the bounds. A leak
 * grows without bound and shows; the noise of objects of 1 KiB to 64 MiB
 * coming and going stays within the slack.
 */
export function flatness(samples: readonly Sample[], bounds: FlatBounds): Flatness {
  const third = Math.floor(samples.length / 3);
  const max = (part: readonly Sample[]) => ({
    rss: Math.max(0, ...part.map((s) => s.rss)),
    anon: Math.max(0, ...part.map((s) => s.anon)),
    fds: Math.max(0, ...part.map((s) => s.fds)),
  });
  const middle = max(samples.slice(third, 2 * third));
  const last = max(samples.slice(2 * third));
  const problems: string[] = [];
  if (third < 2) problems.push(`only ${samples.length} samples`);
  const allowed = (bytes: number) => bytes * (1 + bounds.memoryRatio) + bounds.memorySlack;
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (last.rss > allowed(middle.rss)) {
    problems.push(`RSS grew from ${mib(middle.rss)} to ${mib(last.rss)}`);
  }
  if (last.anon > allowed(middle.anon)) {
    problems.push(`RssAnon grew from ${mib(middle.anon)} to ${mib(last.anon)}`);
  }
  if (last.fds > middle.fds + bounds.fdSlack) {
    problems.push(`fds grew from ${middle.fds} to ${last.fds}`);
  }
  return { middle, last, problems };
}
