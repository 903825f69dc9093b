/**
 * A real `redis-server` for tests: started on a free loopback port with no
 * automatic persistence (`--save "" --appendonly no`), stopped by its pid.
 * Use it with `await using`:
 *
 * ```ts ignore
 * await using redis = await startRedis({ password: "secret" });
 * const store = await RedisLeaseStore.connect({ url: redis.url });
 * ```
 */

function hasRedisServer(): boolean {
  try {
    return new Deno.Command("redis-server", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Options for every test that needs `redis-server`. Such tests run wherever
 * it is installed, and always in CI (`CI=true`), where a missing server fails
 * them; on a developer machine without it they are skipped with one notice.
 */
export const redisTestOptions: { readonly ignore: boolean } = {
  ignore: !hasRedisServer() && Deno.env.get("CI") !== "true",
};
if (redisTestOptions.ignore) {
  console.warn(
    "redis-server not found: Redis tests skipped here (apt-get install redis-server; CI runs them)",
  );
}

/** Options of {@link startRedis}. */
export interface RedisServerOptions {
  /** A `requirepass` password; the server then refuses clients without it. */
  readonly password?: string;
  /** The port to listen on. Default: a free one. */
  readonly port?: number;
}

/** A reply as {@link RedisServer.command} reads it. */
export type RawReply = string | number | null | RawReply[];

/** A running `redis-server`. */
export interface RedisServer extends AsyncDisposable {
  /** The loopback port it listens on; kept across {@link RedisServer.restart}. */
  readonly port: number;
  /** `redis://[:password@]127.0.0.1:port/0`. */
  readonly url: string;
  /** The pid of the current server process, undefined while stopped. */
  readonly pid: number | undefined;
  /** Sends one command on a connection of its own; an error reply rejects. */
  command(...args: string[]): Promise<RawReply>;
  /** Stops the server by its pid and waits for it to exit. Idempotent. */
  stop(signal?: Deno.Signal): Promise<void>;
  /**
   * Starts the server again on the same port: empty, or with what a `SAVE`
   * before {@link RedisServer.stop} wrote.
   */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;
/** Ports tried on a first start: a free port can be taken before Redis binds it. */
const START_ATTEMPTS = 5;

/**
 * Starts `redis-server` on loopback and waits until it answers.
 *
 * @param options A password, or a fixed port.
 * @returns The server; dispose of it (idempotent) to stop it and remove its directory.
 */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  let port = options.port ?? freePort();
  const password = options.password;
  const dir = await Deno.makeTempDir({ prefix: "packice-redis-" });
  let child: Deno.ChildProcess | undefined;

  const command = async (...args: string[]): Promise<RawReply> => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const replies = new ReplyReader(conn);
      if (password !== undefined) {
        await conn.write(encode(["AUTH", password]));
        await replies.next();
      }
      await conn.write(encode(args));
      return await replies.next();
    } finally {
      conn.close();
    }
  };

  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    const current = child;
    if (current === undefined) return;
    child = undefined;
    try {
      Deno.kill(current.pid, signal);
    } catch {
      // Already exited.
    }
    await current.status;
  };

  const spawn = async () => {
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      ...(password === undefined ? [] : ["--requirepass", password]),
    ];
    child = new Deno.Command("redis-server", {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    })
      .spawn();
    try {
      await waitUntilAnswering(port, child);
    } catch (error) {
      await stop("SIGKILL");
      throw error;
    }
  };

  // Another process (an outgoing connection's ephemeral port, a daemon
  // listening on port 0) may take the free port between its check and
  // Redis's bind: a server that exits at once gets another port.
  for (let attempt = 1;; attempt++) {
    try {
      await spawn();
      break;
    } catch (error) {
      if (options.port === undefined && attempt < START_ATTEMPTS && error instanceof ExitedError) {
        port = freePort();
        continue;
      }
      await Deno.remove(dir, { recursive: true });
      throw error;
    }
  }
  const auth = password === undefined ? "" : `:${encodeURIComponent(password)}@`;
  return {
    port,
    url: `redis://${auth}127.0.0.1:${port}/0`,
    get pid() {
      return child?.pid;
    },
    command,
    stop,
    restart: async () => {
      if (child !== undefined) throw new Error("Cannot restart Redis: it is running");
      await spawn();
    },
    [Symbol.asyncDispose]: async () => {
      await stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Redis exited before it answered: on a port of our choosing, most likely taken meanwhile. */
class ExitedError extends Error {
  constructor(port: number, code: number) {
    super(`Cannot start redis-server on port ${port}: exited with code ${code}`);
  }
}

/** Polls with PING until the server replies (`+PONG`, or `-NOAUTH` with a password). */
async function waitUntilAnswering(port: number, child: Deno.ChildProcess): Promise<void> {
  let exit: Deno.CommandStatus | undefined;
  child.status.then((status) => exit = status);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await answersPing(port)) return;
    if (exit !== undefined) throw new ExitedError(port, exit.code);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`Cannot start redis-server on port ${port}: no answer in ${READY_TIMEOUT_MS} ms`);
}

async function answersPing(port: number): Promise<boolean> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return false;
  }
  try {
    await conn.write(encode(["PING"]));
    await new ReplyReader(conn).next();
    return true;
  } catch (error) {
    return error instanceof Error && error.message.startsWith("NOAUTH");
  } finally {
    conn.close();
  }
}

function encode(args: string[]): Uint8Array {
  const encoder = new TextEncoder();
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${encoder.encode(arg).length}\r\n${arg}\r\n`);
  return encoder.encode(parts.join(""));
}

/** Reads RESP2 replies from a connection. */
class ReplyReader {
  readonly #conn: Deno.Conn;
  #buffer = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async next(): Promise<RawReply> {
    const line = await this.#line();
    const rest = line.slice(1);
    switch (line[0]) {
      case "+":
        return rest;
      case "-":
        throw new Error(rest);
      case ":":
        return Number(rest);
      case "$": {
        if (Number(rest) < 0) return null;
        const bytes = await this.#take(Number(rest) + 2);
        return new TextDecoder().decode(bytes.subarray(0, -2));
      }
      case "*": {
        if (Number(rest) < 0) return null;
        const items: RawReply[] = [];
        for (let i = 0; i < Number(rest); i++) items.push(await this.next());
        return items;
      }
    }
    throw new Error(`Unexpected reply from Redis: ${line}`);
  }

  async #line(): Promise<string> {
    for (;;) {
      const end = this.#buffer.findIndex((byte, i) => byte === 13 && this.#buffer[i + 1] === 10);
      if (end >= 0) return new TextDecoder().decode(await this.#take(end + 2)).slice(0, -2);
      await this.#fill();
    }
  }

  async #take(length: number): Promise<Uint8Array> {
    while (this.#buffer.length < length) await this.#fill();
    const taken = this.#buffer.slice(0, length);
    this.#buffer = this.#buffer.slice(length);
    return taken;
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(4096);
    const read = await this.#conn.read(chunk);
    if (read === null) throw new Error("Redis closed the connection");
    const next = new Uint8Array(this.#buffer.length + read);
    next.set(this.#buffer);
    next.set(chunk.subarray(0, read), this.#buffer.length);
    this.#buffer = next;
  }
}
