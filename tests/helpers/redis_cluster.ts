/**
 * A real three-master Redis Cluster for tests: three `redis-server
 * --cluster-enabled yes` on free loopback ports (each with its cluster bus
 * port, +10000, free too), joined by `redis-cli --cluster create`, ready once
 * every node reports `cluster_state:ok`. Stopped by pid with `await using`:
 *
 * Tests that use it take `redisTestOptions`: `redis-cli` comes with `redis-server`.
 * A master's clock can be set behind the others' (`behindMs`): it then runs
 * with clock_behind.c preloaded, built with `cc` into the cluster's
 * directory.
 *
 * ```ts ignore
 * await using cluster = await startRedisCluster();
 * const store = await RedisLeaseStore.connect({ url: cluster.url });
 * ```
 */

/** A running cluster. */
export interface RedisCluster extends AsyncDisposable {
  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`. */
  readonly url: string;
  /** The masters' ports. */
  readonly ports: readonly number[];
  /** Runs `redis-cli -c -p <port> <args>` (following redirections) and returns its output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Stops the master on `port` by its pid and waits for it to exit. */
  stop(port: number, signal?: Deno.Signal): Promise<void>;
  /**
   * Starts the master on `port` again, empty but with its cluster
   * configuration, and waits until the cluster serves every slot again.
   */
  restart(port: number): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** By how many milliseconds each master's wall clock is behind, in the order of `ports`. */
  readonly behindMs?: readonly number[];
}

const MASTERS = 3;
const READY_TIMEOUT_MS = 15_000;

/**
 * Starts the cluster and waits until it serves every slot.
 *
 * @returns The cluster; dispose of it to stop its servers and remove their directory.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const dir = await Deno.makeTempDir({ prefix: "packice-redis-cluster-" });
  const envs = new Map<number, Record<string, string>>();
  const children = new Map<number, Deno.ChildProcess>();
  const stopOne = async (port: number, signal: Deno.Signal = "SIGKILL") => {
    const child = children.get(port);
    if (child === undefined) return;
    children.delete(port);
    try {
      Deno.kill(child.pid, signal);
    } catch {
      // Exited already.
    }
    await child.status;
  };
  const stop = async () => {
    for (const port of [...children.keys()]) await stopOne(port);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const spawn = (port: number) => {
    children.set(
      port,
      new Deno.Command("redis-server", {
        args: ["--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"]
          .concat(["--cluster-config-file", `${dir}/${port}/nodes.conf`, "--dir", `${dir}/${port}`])
          .concat(["--save", "", "--appendonly", "no"]),
        env: envs.get(port) ?? {},
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn(),
    );
  };
  const cli = async (port: number, ...args: string[]) => {
    const output = await new Deno.Command("redis-cli", {
      args: ["-c", "-h", "127.0.0.1", "-p", String(port), ...args],
      stdin: "null",
    }).output();
    return new TextDecoder().decode(output.stdout);
  };
  try {
    const ports = clusterPorts(MASTERS);
    const behind = options.behindMs ?? [];
    const shim = behind.some((ms) => ms !== 0) ? await buildClockBehind(dir) : undefined;
    for (const [i, port] of ports.entries()) {
      await Deno.mkdir(`${dir}/${port}`);
      if (shim !== undefined && (behind[i] ?? 0) !== 0) {
        envs.set(port, {
          LD_PRELOAD: shim,
          PACKICE_CLOCK_BEHIND_US: String(Math.round(behind[i]! * 1000)),
        });
      }
      spawn(port);
    }
    await until(async () => {
      for (const port of ports) if ((await cli(port, "PING")).trim() !== "PONG") return false;
      return true;
    }, "the cluster's servers answer");
    const created = await new Deno.Command("redis-cli", {
      args: ["--cluster", "create", ...ports.map((port) => `127.0.0.1:${port}`)]
        .concat(["--cluster-replicas", "0", "--cluster-yes"]),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!created.success) {
      throw new Error(
        `redis-cli --cluster create failed: ${new TextDecoder().decode(created.stdout)}`,
      );
    }
    const ready = () =>
      until(async () => {
        for (const port of ports) {
          if (!(await cli(port, "CLUSTER", "INFO")).includes("cluster_state:ok")) return false;
        }
        return true;
      }, "every node reports cluster_state:ok");
    await ready();
    return {
      url: `redis+cluster://${ports.map((port) => `127.0.0.1:${port}`).join(",")}`,
      ports,
      cli,
      stop: stopOne,
      restart: async (port) => {
        if (children.has(port)) throw new Error(`Cannot restart the master on ${port}: it runs`);
        spawn(port);
        await ready();
      },
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Builds clock_behind.c into `dir`; returns the library's path. */
async function buildClockBehind(dir: string): Promise<string> {
  const out = `${dir}/clock_behind.so`;
  const { code, stderr } = await new Deno.Command("cc", {
    args: [
      "-O2",
      "-shared",
      "-fPIC",
      "-o",
      out,
      new URL("clock_behind.c", import.meta.url).pathname,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`cc clock_behind.c failed: ${new TextDecoder().decode(stderr)}`);
  return out;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Cannot start a Redis Cluster: ${what} timed out`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Free loopback ports whose cluster bus ports (+10000) are free too. */
function clusterPorts(count: number): number[] {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (!ports.includes(port) && free(port) && free(port + 10_000)) ports.push(port);
  }
  return ports;
}

function free(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}
