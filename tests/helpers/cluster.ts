/**
 * Daemons of one cluster for tests: `packice serve --redis --http
 * 127.0.0.1:0` each, on loopback, stopped by their pid.
 */
const CLI = new URL("../../cli.ts", import.meta.url).pathname;

/** A running daemon of a test cluster. */
export interface ClusterDaemon extends AsyncDisposable {
  /** Its node id. */
  readonly node: string;
  /** Its Unix socket. */
  readonly socket: string;
  /** Its HTTP base URL. */
  readonly url: string;
  /** Its pid. */
  readonly pid: number;
  /** Its `/metrics` as name to value. */
  metrics(): Promise<Record<string, number>>;
  /** Sends `signal` and waits for the exit. Idempotent. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** The token every test cluster uses. */
export const TOKEN = "cluster-secret";

/**
 * Starts a daemon named `node` in `dir`, in the Redis namespace `namespace`;
 * without `redisUrl`, on the embedded directory (`extra` then has its `--join`).
 */
export async function startClusterDaemon(
  redisUrl: string | undefined,
  dir: string,
  node: string,
  namespace = "cluster",
  extra: string[] = [],
): Promise<ClusterDaemon> {
  const socket = `${dir}/${node}.sock`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      // Such as `--v8-flags=--perf-basic-prof` or `--cpu-prof` to profile the daemons.
      ...(Deno.env.get("PACKICE_TEST_DENO_FLAGS")?.split(" ").filter(Boolean) ?? []),
      CLI,
      "serve",
      "--impl",
      "mem",
      "--capacity",
      "256MiB",
      "--socket",
      socket,
      "--http",
      "127.0.0.1:0",
      "--token",
      TOKEN,
      ...(redisUrl === undefined ? [] : ["--redis", redisUrl, "--namespace", namespace]),
      "--node",
      node,
      "--log-level",
      Deno.env.get("PACKICE_TEST_LOG") ?? "error",
      ...extra,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  let url: string | undefined;
  while (url === undefined) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`Daemon ${node} exited before it was ready: ${output}`);
    output += value;
    url = /Packice listening on (http:\/\/\S+)/.exec(output)?.[1];
  }
  // The rest of its output is not needed.
  lines.cancel().catch(() => {});
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    stopped ??= (async () => {
      try {
        Deno.kill(child.pid, signal);
      } catch {
        // Exited already.
      }
      return await child.status;
    })();
    return stopped;
  };
  return {
    node,
    socket,
    url,
    pid: child.pid,
    async metrics() {
      const response = await fetch(`${url}/metrics`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const text = await response.text();
      const values: Record<string, number> = {};
      for (const line of text.split("\n")) {
        const match = /^packice_(\w+) (\S+)$/.exec(line);
        if (match) values[match[1]!] = Number(match[2]);
      }
      return values;
    },
    stop,
    [Symbol.asyncDispose]: async () => void await stop(),
  };
}

/** Daemons of {@link startClusterDaemons}, in the order of their nodes; disposing stops them all. */
export type ClusterDaemons<N extends readonly string[]> =
  & { readonly [K in keyof N]: ClusterDaemon }
  & AsyncDisposable;

/**
 * Starts a daemon for each of `nodes` at once, as {@link startClusterDaemon}
 * does one: all of them, or none left running.
 */
export async function startClusterDaemons<const N extends readonly string[]>(
  redisUrl: string,
  dir: string,
  nodes: N,
  namespace = "cluster",
  extra: string[] = [],
): Promise<ClusterDaemons<N>> {
  const started = await Promise.allSettled(
    nodes.map((node) => startClusterDaemon(redisUrl, dir, node, namespace, extra)),
  );
  const daemons = started.flatMap((outcome) =>
    outcome.status === "fulfilled" ? [outcome.value] : []
  );
  const stop = async () => void await Promise.all(daemons.map((daemon) => daemon.stop()));
  const failed = started.find((outcome) => outcome.status === "rejected");
  if (failed !== undefined) {
    await stop();
    throw failed.reason;
  }
  return Object.assign(daemons, { [Symbol.asyncDispose]: stop }) as unknown as ClusterDaemons<N>;
}

export { pattern } from "./pattern.ts";

/** Whether two byte arrays are equal, without one assertion per byte. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A temporary folder for a test cluster's sockets and files, removed on disposal. */
export interface ClusterDir extends AsyncDisposable {
  readonly path: string;
}

/** Makes a {@link ClusterDir}; declare it before the daemons in it, so they stop first. */
export async function clusterDir(): Promise<ClusterDir> {
  const path = await Deno.makeTempDir({ prefix: "packice-cluster-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}
