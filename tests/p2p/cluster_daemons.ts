/**
 * Real daemons in a cluster: `cli.ts serve` processes on loopback, each with
 * its own socket and HTTP port 0, the test gossip profile and one token.
 */
import { eventually } from "../helpers/eventually.ts";
import { startTaskFlags } from "../helpers/uds_daemon.ts";

const cli = new URL("../../cli.ts", import.meta.url).pathname;

/** The cluster token of these tests. */
export const TOKEN = "cluster-test-token";

/** A member as `GET /v1/cluster/members` lists it. */
export interface ListedMember {
  readonly node: string;
  readonly address: string;
  readonly state: string;
  readonly incarnation: number;
  readonly changedAt: number;
}

/** One daemon process. */
export interface ClusterDaemon {
  readonly node: string;
  readonly url: string;
  /** Its Unix socket. */
  readonly socket: string;
  readonly process: Deno.ChildProcess;
  /** `GET /v1/cluster/members` with the token. */
  members(): Promise<ListedMember[]>;
  /** A line of `/metrics` by its name (and labels), as a number. */
  metric(name: string): Promise<number>;
  /** Sends a signal; SIGKILL and SIGTERM also wait for the exit. */
  signal(signal: Deno.Signal): Promise<void>;
  /** What the daemon wrote on stderr. */
  stderr(): string;
}

/** Daemons started together; disposing kills those still running and removes their sockets. */
export interface ClusterDaemons extends AsyncDisposable {
  readonly daemons: ClusterDaemon[];
  /**
   * Starts one more daemon joining through the first, with `extra` flags and
   * `env` variables of its own.
   */
  add(
    node: string,
    extra?: readonly string[],
    env?: Record<string, string>,
  ): Promise<ClusterDaemon>;
}

/**
 * Starts `nodes` daemons, each after the first joining through it; those
 * after the first start at once, listed in the order of `nodes`.
 */
export async function startCluster(
  nodes: readonly string[],
  { profile = "test", extra = [] }: { profile?: "lan" | "test"; extra?: readonly string[] } = {},
): Promise<ClusterDaemons> {
  const dir = await Deno.makeTempDir({ prefix: "packice-cluster-" });
  const flags = await startTaskFlags();
  const daemons: ClusterDaemon[] = [];
  /** Every process spawned, listening yet or not: disposal stops them all. */
  const spawned: Deno.ChildProcess[] = [];
  const exits: Promise<unknown>[] = [];
  const start = async (
    node: string,
    own: readonly string[] = [],
    env: Record<string, string> = {},
  ) => {
    const join = daemons.length === 0 ? [] : ["--join", daemons[0]!.url.slice("http://".length)];
    const process = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...flags,
        cli,
        "serve",
        "--socket",
        `${dir}/${node}.sock`,
        "--http",
        "127.0.0.1:0",
        "--token",
        TOKEN,
        "--node",
        node,
        "--gossip-profile",
        profile,
        "--capacity",
        "64MiB",
        "--log-level",
        "warn",
        ...join,
        ...extra,
        ...own,
      ],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    spawned.push(process);
    let errors = "";
    const decoder = new TextDecoder();
    const errorReader = (async () => {
      for await (const chunk of process.stderr) errors += decoder.decode(chunk, { stream: true });
    })();
    const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    let url: string | undefined;
    while (url === undefined) {
      const { value, done } = await reader.read();
      if (done) {
        await Promise.all([process.status, errorReader]);
        throw new Error(`Daemon ${node} exited before listening: ${errors}`);
      }
      out += value;
      url = /Packice listening on (http:\/\/[0-9.:]+)/.exec(out)?.[1];
    }
    const drained = (async () => {
      while (!(await reader.read()).done) { /* keep the pipe empty */ }
    })();
    exits.push(Promise.all([process.status, drained, errorReader]));
    const headers = { authorization: `Bearer ${TOKEN}` };
    const daemon: ClusterDaemon = {
      node,
      url,
      socket: `${dir}/${node}.sock`,
      process,
      members: async () => {
        const response = await fetch(`${url}/v1/cluster/members`, { headers });
        if (!response.ok) {
          throw new Error(`${node}: HTTP ${response.status}: ${await response.text()}`);
        }
        return (await response.json()).members;
      },
      metric: async (name) => {
        const text = await (await fetch(`${url}/metrics`, { headers })).text();
        const line = text.split("\n").find((l) => l.startsWith(`${name} `));
        if (line === undefined) throw new Error(`${node}: no metric ${name}`);
        return Number(line.slice(name.length + 1));
      },
      signal: async (signal) => {
        try {
          process.kill(signal);
        } catch {
          return;
        }
        if (signal === "SIGKILL" || signal === "SIGTERM") await process.status;
      },
      stderr: () => errors,
    };
    return daemon;
  };
  const add = async (
    node: string,
    own: readonly string[] = [],
    env: Record<string, string> = {},
  ) => {
    const daemon = await start(node, own, env);
    daemons.push(daemon);
    return daemon;
  };
  try {
    const [first, ...rest] = nodes;
    if (first !== undefined) await add(first);
    // The others join through the first together, as a cluster's members start.
    const started = await Promise.allSettled(rest.map((node) => start(node)));
    for (const outcome of started) {
      if (outcome.status === "rejected") throw outcome.reason;
      daemons.push(outcome.value);
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  async function dispose() {
    for (const process of spawned) {
      try {
        process.kill("SIGCONT");
        process.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await Promise.all(exits);
    await Deno.remove(dir, { recursive: true });
  }
  return { daemons, add, [Symbol.asyncDispose]: dispose };
}

/** The state of `node` in a member list. */
export function stateIn(members: readonly ListedMember[], node: string): string | undefined {
  return members.find((m) => m.node === node)?.state;
}

/** Waits until every daemon lists all of them, each alive. */
export async function converged(
  daemons: readonly ClusterDaemon[],
  timeout = 10_000,
): Promise<void> {
  await eventually(
    async () => {
      const views = await Promise.all(daemons.map((d) => d.members()));
      return views.every((members) =>
        members.length === daemons.length && members.every((m) => m.state === "alive")
      );
    },
    `all ${daemons.length} daemons see each other alive`,
    { timeout, interval: 50 },
  );
}
