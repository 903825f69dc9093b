/** Processes of the side-by-side benchmarks: CPU time, tools on the PATH, a daemon to measure. */

/** Clock ticks per second of /proc times (`getconf CLK_TCK`; 100 on Linux everywhere). */
const TICKS_PER_SECOND = 100;

/** CPU time (user + system) a process has used, in milliseconds, from /proc/PID/stat. */
export function cpuMs(pid: number | "self"): number {
  return statCpuMs(Deno.readTextFileSync(`/proc/${pid}/stat`));
}

/**
 * CPU time a process has used, in milliseconds, summed over its threads from
 * /proc/PID/task/TID/schedstat (nanoseconds on the CPU): fine enough for one
 * request, where {@link cpuMs} counts clock ticks of 10 ms.
 */
export function threadsCpuMs(pid: number): number {
  let ns = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0]);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return ns / 1e6;
}

/**
 * CPU time in milliseconds from the text of a /proc/PID/stat: the process's
 * own (utime + stime), or with `waited` that of the children it has waited
 * for (cutime + cstime).
 */
export function statCpuMs(stat: string, waited = false): number {
  // Fields after the command name, which is in parentheses and may hold spaces:
  // utime, stime, cutime, cstime are fields 14-17 of the line, 12-15 from field 3.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  const ticks = waited ? fields[13]! + fields[14]! : fields[11]! + fields[12]!;
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** The part of a process's CPU time spent in the kernel (stime), in milliseconds, from the text of a /proc/PID/stat. */
export function statSysMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  return (fields[12]! * 1000) / TICKS_PER_SECOND;
}

/** Whether `command` runs here (looked up on the PATH). */
export function installed(command: string, versionFlag = "--version"): boolean {
  try {
    new Deno.Command(command, { args: [versionFlag], stdout: "null", stderr: "null" })
      .outputSync();
    return true;
  } catch {
    return false;
  }
}

/** The permission flags of `deno task start`, so a benchmarked daemon runs as users run it. */
export async function daemonFlags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  return (config.tasks.start as string).split(/\s+/).filter((w) => w.startsWith("--allow-"));
}

/** Waits for `text` on a child's stdout, then drains the rest in the background. */
export async function waitFor(child: Deno.ChildProcess, text: string): Promise<void> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`A child exited before printing ${text}`);
    seen += value;
  }
  void (async () => {
    while (!(await reader.read()).done);
  })();
}

/**
 * Starts the daemon (`cli.ts serve`) with `deno run` on a Unix socket, and
 * HTTP when `http` is given, with `more` flags; resolves once it serves.
 */
export async function startDaemon(
  socket: string,
  http?: string,
  ...more: string[]
): Promise<Deno.ChildProcess> {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const args = [cli, "serve", "--socket", socket, "--capacity", "4GiB", "--log-level", "warn"];
  if (http !== undefined) args.push("--http", http);
  args.push(...more);
  const daemon = new Deno.Command(Deno.execPath(), {
    args: ["run", ...await daemonFlags(), ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  await waitFor(daemon, socket);
  return daemon;
}

/**
 * The bearer token a daemon started without one made for its HTTP server:
 * the first line of `<socket>.token`, which it writes before it serves.
 */
export async function daemonToken(socket: string): Promise<string> {
  const text = await Deno.readTextFile(`${socket}.token`);
  return text.split("\n")[0]!.trim();
}

/** Stops a child by its pid and waits for it; quiet when it has already exited. */
export async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already exited.
  }
  await child.status;
}

/** The median of a list of numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
