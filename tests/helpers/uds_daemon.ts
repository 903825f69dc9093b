/**
 * Runs `cli.ts serve` in its own process on a temporary socket, with the
 * permissions of `deno task start`, and Deno child scripts beside it.
 */
import { assert } from "./assert.ts";

const root = new URL("../../", import.meta.url);

/** The permissions of the `start` task in deno.json. */
export async function startTaskFlags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const task: string = config.tasks.start;
  return task.split(/\s+/).filter((word) => word.startsWith("--allow-"));
}

/** A daemon process. */
export interface DaemonProcess extends AsyncDisposable {
  readonly path: string;
  readonly process: Deno.ChildProcess;
  /** Everything it printed on stdout up to the listening line. */
  readonly banner: string;
  /** Milliseconds from spawn to the listening line. */
  readonly startupMs: number;
  /** Lines the daemon wrote on stderr so far. */
  stderr(): string;
  /** Sends a signal and waits for the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** A fresh temporary directory for sockets, removed by the caller. */
export function socketDir(): Promise<string> {
  return Deno.makeTempDir({ prefix: "packice-uds-" });
}

/** A test that gets a fresh {@link socketDir}, removed after it. */
export function testInSocketDir(name: string, fn: (dir: string) => Promise<void>): void {
  Deno.test(name, async () => {
    const dir = await socketDir();
    try {
      await fn(dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/** Whether anything, even a dangling link, is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Spawns `cli.ts serve --socket <path> ...args` and waits until it listens.
 *
 * @param path The socket path.
 * @param args More `serve` flags.
 * @param entry The script to run in place of `cli.ts`, taking the same arguments.
 */
export async function spawnDaemon(
  path: string,
  args: string[] = [],
  entry: URL = new URL("cli.ts", root),
): Promise<DaemonProcess> {
  const start = performance.now();
  const { process, errors, errorReader } = spawnDeno([
    "run",
    ...(await startTaskFlags()),
    entry.pathname,
    "serve",
    "--socket",
    path,
    "--log-level",
    "warn",
    ...args,
  ]);
  const lines = readLines(process.stdout);
  let banner = "";
  for (;;) {
    const line = await lines.next();
    if (line.done) {
      const status = await process.status;
      await errorReader;
      throw new Error(`Daemon exited with code ${status.code} before listening: ${errors()}`);
    }
    banner += `${line.value}\n`;
    if (line.value.includes(`unix://${path}`)) break;
  }
  const startupMs = performance.now() - start;
  // Keep draining stdout so the daemon never blocks on it.
  const drained = (async () => {
    for (;;) if ((await lines.next()).done) return;
  })();
  let status: Promise<Deno.CommandStatus> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    status ??= (async () => {
      kill(process, signal);
      const result = await exited(process);
      await Promise.all([drained, errorReader]);
      return result;
    })();
    return status;
  };
  return {
    path,
    process,
    banner,
    startupMs,
    stderr: errors,
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}

/** A Deno child script from tests/helpers, with its output. */
export interface ChildProcess extends AsyncDisposable {
  readonly process: Deno.ChildProcess;
  /** The next line it prints on stdout. */
  line(): Promise<string>;
  /** Waits for it to exit (killing it first if asked) and returns status and remaining output. */
  finish(
    signal?: Deno.Signal,
  ): Promise<{ status: Deno.CommandStatus; stdout: string; stderr: string }>;
}

/**
 * Spawns `deno run -A tests/helpers/uds_child.ts ...args`.
 *
 * @param args The child's mode and arguments.
 */
export function spawnChild(args: string[]): ChildProcess {
  const { process, errors, errorReader } = spawnDeno([
    "run",
    "-A",
    new URL("uds_child.ts", import.meta.url).pathname,
    ...args,
  ]);
  const lines = readLines(process.stdout);
  let finished: ReturnType<ChildProcess["finish"]> | undefined;
  const finish = (signal?: Deno.Signal) => {
    finished ??= (async () => {
      if (signal) kill(process, signal);
      let stdout = "";
      const rest = (async () => {
        for (;;) {
          const line = await lines.next();
          if (line.done) return;
          stdout += `${line.value}\n`;
        }
      })();
      const [status] = await Promise.all([exited(process), rest, errorReader]);
      return { status, stdout, stderr: errors() };
    })();
    return finished;
  };
  return {
    process,
    line: async () => {
      const line = await lines.next();
      assert(!line.done, `Child ended without output: ${errors()}`);
      return line.value;
    },
    finish,
    [Symbol.asyncDispose]: async () => {
      await finish("SIGKILL");
    },
  };
}

/** How long a child may take to exit before it is killed, so no test hangs. */
const EXIT_TIMEOUT_MS = 20_000;

function kill(process: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    process.kill(signal);
  } catch {
    // Already gone.
  }
}

/** The exit status, killing the child with SIGKILL if it has not exited in time. */
async function exited(process: Deno.ChildProcess): Promise<Deno.CommandStatus> {
  const timer = setTimeout(() => kill(process, "SIGKILL"), EXIT_TIMEOUT_MS);
  try {
    return await process.status;
  } finally {
    clearTimeout(timer);
  }
}

async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered.length > 0) yield buffered;
}

/** Spawns `deno ...args` with piped output, reading stderr as text in the background. */
function spawnDeno(args: string[]): {
  process: Deno.ChildProcess;
  errors: () => string;
  errorReader: Promise<void>;
} {
  const process = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let errors = "";
  const errorReader = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of process.stderr) errors += decoder.decode(chunk, { stream: true });
  })();
  return { process, errors: () => errors, errorReader };
}
