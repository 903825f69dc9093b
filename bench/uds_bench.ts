/**
 * Benchmarks of the Unix-socket transport against a daemon in its own
 * process (`cli.ts serve`), each beside a baseline measured in the same run:
 *
 * - get of a sealed 1 KiB object vs a bare FFI SCM_RIGHTS ping-pong between two Deno processes;
 * - get of a 1 GiB object vs get of a 1 KiB object;
 * - put of 64 MiB vs copying 64 MiB into already-touched memory;
 * - puts of 4 KiB objects from one client and from 32;
 * - 32 busy connections with 1000 idle ones beside them vs the 32 alone;
 * - the longest the event loop stops while a peer lists, evicts among, stats
 *   one of, or closes with, 100k objects put in C and not taken in yet.
 *
 * Latencies on a small VM swing with how idle its CPUs are, so each figure
 * and its baseline are measured in alternating rounds and compared on all
 * their samples. They swing most with where the scheduler puts the two
 * processes: waking a thread on another CPU costs about 25 µs here, on the
 * same CPU a few. So the get is also measured against the ping-pong with
 * both pairs pinned (`taskset`) to one CPU, and to two.
 *
 * Usage: `deno run -A bench/uds_bench.ts [FILTER]`: with a filter, only the
 * figures whose name holds it (`put_4KiB` runs the puts of 4 KiB objects).
 *
 * Child roles (spawned by this script): `pingpong PATH`, `reactor-pingpong PATH`,
 * `idle PATH COUNT` and `placed-client DAEMON_PATH PING_PATH`.
 */
import { Client, UdsPeer } from "../mod.ts";
import { Errno } from "../native/errno.ts";
import { Linux } from "../native/ffi.ts";
import { loadNative, type Native } from "../native/load.ts";
import { Reactor } from "../native/reactor.ts";
import { quantile, report, timeEach } from "./stats.ts";
import { waitFor } from "./processes.ts";
import { WAITING, waitingPauses } from "./waiting_pause.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const self = new URL(import.meta.url).pathname;
/** How long each kind of get runs untimed before it is measured, in milliseconds. */
const WARM_UP_MS = 1000;
const root = new URL("../", import.meta.url);

function native(): Native {
  const loaded = loadNative();
  if (!loaded) throw new Error("The native library is needed for the Unix-socket benchmarks");
  return loaded;
}

const cString = (text: string) => new TextEncoder().encode(`${text}\0`);

// ---------------------------------------------------------------------------
// The baseline: a bare ping-pong with one fd attached to each reply, no
// protocol and no event loop: each side waits in a synchronous epoll_wait on
// the JS thread, the fastest way a Deno process can wait for a message.

/** The ping-pong server (child role): answers each message with one fd attached. */
function pingServer(path: string): void {
  const { symbols } = native();
  const listener = symbols.pk_uds_listen(cString(path), 16);
  if (listener < 0) throw new Error(`listen: errno ${-listener}`);
  const memfd = symbols.pk_memfd_create(cString("pingpong"), 0);
  symbols.pk_ftruncate(memfd, 4096n);
  const attach = Int32Array.of(memfd);
  const epfd = symbols.pk_epoll_create();
  const data = new BigUint64Array(8);
  const events = new Uint32Array(8);
  const buffer = new Uint8Array(4096);
  const fds = new Int32Array(8);
  const count = new Int32Array(1);
  const flags = new Int32Array(1);
  symbols.pk_epoll_ctl(epfd, 1, listener, 1, 0n);
  console.log("ready");
  symbols.pk_epoll_wait(epfd, data, events, 8, -1);
  const connection = symbols.pk_accept(listener);
  symbols.pk_epoll_ctl(epfd, 1, connection, 1, 1n);
  for (;;) {
    symbols.pk_epoll_wait(epfd, data, events, 8, -1);
    for (;;) {
      const n = Number(symbols.pk_recvmsg(connection, buffer, 4096n, fds, 8, count, flags));
      if (n === -Errno.EAGAIN) break;
      if (n <= 0) return;
      symbols.pk_sendmsg(connection, buffer, BigInt(n), attach, 1);
    }
  }
}

/** The ping-pong client: one message out, one reply and its fd back. */
class PingClient {
  readonly #symbols = native().symbols;
  readonly #fd: number;
  readonly #epfd: number;
  readonly #data = new BigUint64Array(8);
  readonly #events = new Uint32Array(8);
  readonly #message = new Uint8Array(16);
  readonly #buffer = new Uint8Array(4096);
  readonly #fds = new Int32Array(8);
  readonly #count = new Int32Array(1);
  readonly #flags = new Int32Array(1);

  constructor(path: string) {
    this.#fd = this.#symbols.pk_uds_connect(cString(path));
    if (this.#fd < 0) throw new Error(`connect: errno ${-this.#fd}`);
    this.#epfd = this.#symbols.pk_epoll_create();
    this.#symbols.pk_epoll_ctl(this.#epfd, 1, this.#fd, 1, 0n);
  }

  once(): void {
    const s = this.#symbols;
    s.pk_sendmsg(this.#fd, this.#message, 16n, null, 0);
    for (;;) {
      s.pk_epoll_wait(this.#epfd, this.#data, this.#events, 8, -1);
      const n = s.pk_recvmsg(this.#fd, this.#buffer, 4096n, this.#fds, 8, this.#count, this.#flags);
      if (Number(n) > 0) {
        s.pk_close(this.#fds[0]!);
        return;
      }
    }
  }

  close(): void {
    this.#symbols.pk_close(this.#fd);
    this.#symbols.pk_close(this.#epfd);
  }
}

// The same ping-pong with the transport's wait instead: each side's socket is
// watched by the native reactor thread, which hands readiness to the JS thread
// through a thread-safe callback. The floor for anything that keeps the event
// loop free while it waits.

/** The reactor ping-pong server (child role). */
async function reactorPingServer(path: string): Promise<void> {
  const native_ = native();
  const { symbols } = native_;
  const listener = symbols.pk_uds_listen(cString(path), 16);
  const memfd = symbols.pk_memfd_create(cString("pingpong"), 0);
  symbols.pk_ftruncate(memfd, 4096n);
  const attach = Int32Array.of(memfd);
  const buffer = new Uint8Array(4096);
  const fds = new Int32Array(8);
  const count = new Int32Array(1);
  const flags = new Int32Array(1);
  const reactor = Reactor.of(native_);
  const done = Promise.withResolvers<void>();
  let connection = -1;
  let token = 0;
  const echo = {
    ready: () => {
      for (;;) {
        const n = Number(symbols.pk_recvmsg(connection, buffer, 4096n, fds, 8, count, flags));
        if (n === -Errno.EAGAIN) return;
        if (n <= 0) {
          done.resolve(reactor.remove(connection, token));
          return;
        }
        symbols.pk_sendmsg(connection, buffer, BigInt(n), attach, 1);
      }
    },
  };
  const listening = reactor.add(listener, Linux.EPOLLIN, {
    ready: () => {
      connection = symbols.pk_accept(listener);
      token = reactor.add(connection, Linux.EPOLLIN, echo);
      void reactor.remove(listener, listening);
    },
  });
  console.log("ready");
  await (await done.promise);
}

/** The reactor ping-pong client. */
class ReactorPingClient {
  readonly #native = native();
  readonly #fd: number;
  readonly #token: number;
  readonly #message = new Uint8Array(16);
  readonly #buffer = new Uint8Array(4096);
  readonly #fds = new Int32Array(8);
  readonly #count = new Int32Array(1);
  readonly #flags = new Int32Array(1);
  #waiting: (() => void) | undefined;

  constructor(path: string) {
    const { symbols } = this.#native;
    this.#fd = symbols.pk_uds_connect(cString(path));
    if (this.#fd < 0) throw new Error(`connect: errno ${-this.#fd}`);
    this.#token = Reactor.of(this.#native).add(this.#fd, Linux.EPOLLIN, {
      ready: () => {
        const n = symbols.pk_recvmsg(
          this.#fd,
          this.#buffer,
          4096n,
          this.#fds,
          8,
          this.#count,
          this.#flags,
        );
        if (Number(n) <= 0) return;
        symbols.pk_close(this.#fds[0]!);
        const waiting = this.#waiting;
        this.#waiting = undefined;
        waiting?.();
      },
    });
  }

  once(): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiting = resolve;
    this.#native.symbols.pk_sendmsg(this.#fd, this.#message, 16n, null, 0);
    return promise;
  }

  async close(): Promise<void> {
    const removed = Reactor.of(this.#native).remove(this.#fd, this.#token);
    this.#native.symbols.pk_close(this.#fd);
    await removed;
  }
}

// ---------------------------------------------------------------------------
// The daemon and its clients.

function spawn(args: string[], flags = ["-A"]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

async function startDaemon(path: string): Promise<Deno.ChildProcess> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const flags = (config.tasks.start as string).split(/\s+/).filter((w) => w.startsWith("--allow-"));
  const cli = new URL("cli.ts", root).pathname;
  const args = [cli, "serve", "--socket", path, "--capacity", "8GiB", "--log-level", "warn"];
  const daemon = spawn(args, flags);
  await waitFor(daemon, path);
  return daemon;
}

async function clients(path: string, count: number): Promise<Client[]> {
  return await Promise.all(
    Array.from({ length: count }, async () => {
      const peer = await UdsPeer.connect(path);
      return new Client(peer, () => peer.close());
    }),
  );
}

/** Measures each of `fns` in alternating rounds; returns every sample of each. */
async function alternate(
  rounds: number,
  perRound: number,
  ...fns: (() => unknown)[]
): Promise<number[][]> {
  const samples = fns.map((): number[] => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, fn] of fns.entries()) samples[i]!.push(...await timeEach(perRound, fn, 200));
  }
  return samples;
}

/**
 * Runs each of `fns` untimed for a while: the client and a daemon just
 * started run the get and put paths optimized by V8 only after some
 * thousands of calls, while the ping-pong's few lines need no warming. A
 * timed window of puts is tens of milliseconds: unwarmed, V8 compiles inside
 * it and the figure swings by a quarter from run to run.
 */
async function warmUp(...fns: (() => Promise<unknown>)[]): Promise<void> {
  for (const fn of fns) {
    const until = performance.now() + WARM_UP_MS;
    while (performance.now() < until) await fn();
  }
}

/** Operations per second of one sequential loop per client, for about `ms`. */
async function rate(pool: Client[], ms: number, op: (client: Client) => Promise<unknown>) {
  let done = 0;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(pool.map(async (client) => {
    while (performance.now() < end) {
      await op(client);
      done++;
    }
  }));
  return done / ((performance.now() - start) / 1000);
}

/** 4 KiB puts per second from `loops` loops over `pool`, in timed rounds; deletes are untimed. */
async function putRate(pool: Client[], loops: number, rounds: number, perRound: number) {
  const payload = new Uint8Array(4 * KiB).fill(5);
  let elapsed = 0;
  let total = 0;
  for (let round = 0; round < rounds; round++) {
    const ids: string[] = [];
    let next = 0;
    const start = performance.now();
    await Promise.all(Array.from({ length: loops }, async (_, i) => {
      const client = pool[i % pool.length]!;
      while (next++ < perRound) ids.push(await client.put(payload));
    }));
    elapsed += performance.now() - start;
    total += ids.length;
    // A few deletes in flight per client: the daemon holds a memfd per object.
    for (let at = 0; at < ids.length; at += 256) {
      await Promise.all(ids.slice(at, at + 256).map((id, i) => pool[i % pool.length]!.delete(id)));
    }
  }
  return total / (elapsed / 1000);
}

/** 4 KiB puts, each deleted at once, per second from `loops` loops over `pool`. */
async function putDeleteRate(pool: Client[], loops: number, pairs: number): Promise<number> {
  const payload = new Uint8Array(4 * KiB).fill(6);
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: loops }, async (_, i) => {
    const client = pool[i % pool.length]!;
    while (next++ < pairs) await client.delete(await client.put(payload));
  }));
  return pairs / ((performance.now() - start) / 1000);
}

async function main(filter = ""): Promise<void> {
  const wanted = (...benches: string[]) => benches.some((bench) => bench.includes(filter));
  const dir = await Deno.makeTempDir({ prefix: "packice-bench-" });
  const path = `${dir}/daemon.sock`;
  const daemon = await startDaemon(path);
  const opened: Client[] = [];
  try {
    const [one] = await clients(path, 1);
    opened.push(one!);
    const client = one!;
    const get = (id: string) => async () => {
      using handle = await client.get(id);
      if (handle.bytes[handle.size - 1] === 255) throw new Error("Unexpected byte");
    };

    // Get of a sealed object vs the bare ping-pong, and vs the ping-pong on the reactor.
    const small = await client.put(new Uint8Array(KiB).fill(1));
    if (wanted("uds_get_1KiB_vs_pingpong")) {
      const blockPath = `${dir}/ping.sock`;
      const reactorPath = `${dir}/reactor-ping.sock`;
      const blockServer = spawn([self, "pingpong", blockPath]);
      const reactorServer = spawn([self, "reactor-pingpong", reactorPath]);
      await Promise.all([waitFor(blockServer, "ready"), waitFor(reactorServer, "ready")]);
      const ping = new PingClient(blockPath);
      const reactorPing = new ReactorPingClient(reactorPath);
      await warmUp(get(small));
      const [pings = [], reactorPings = [], gets = []] = await alternate(
        10,
        2000,
        () => ping.once(),
        () => reactorPing.once(),
        get(small),
      );
      ping.close();
      await reactorPing.close();
      await Promise.all([blockServer.status, reactorServer.status]);
      const p50 = (samples: number[]) => quantile(samples, 0.5);
      report({
        bench: "uds_get_1KiB_vs_pingpong",
        get_p50_us: p50(gets) * 1000,
        baseline_pingpong_p50_us: p50(pings) * 1000,
        ratio: p50(gets) / p50(pings),
        target: "<= 1.5",
        get_p99_us: quantile(gets, 0.99) * 1000,
        reactor_pingpong_p50_us: p50(reactorPings) * 1000,
        ratio_to_reactor_pingpong: p50(gets) / p50(reactorPings),
      });
    }

    // The same, with each pair of processes pinned to one CPU, then to two.
    for (const [placement, cpus] of [["one_cpu", [0, 0]], ["two_cpus", [0, 1]]] as const) {
      if (!wanted(`uds_get_1KiB_vs_pingpong_${placement}`, `uds_get_1GiB_vs_1KiB_${placement}`)) {
        continue;
      }
      const figures = await placed(dir, cpus[0], cpus[1]);
      if (figures === undefined) break;
      report({
        bench: `uds_get_1KiB_vs_pingpong_${placement}`,
        cpus: `${cpus[0]},${cpus[1]}`,
        get_p50_us: figures.get * 1000,
        baseline_pingpong_p50_us: figures.pingpong * 1000,
        ratio: figures.get / figures.pingpong,
        target: "<= 1.5",
      });
      report({
        bench: `uds_get_1GiB_vs_1KiB_${placement}`,
        cpus: `${cpus[0]},${cpus[1]}`,
        get_1GiB_p50_us: figures.large * 1000,
        get_1KiB_p50_us: figures.get * 1000,
        ratio: figures.large / figures.get,
        target: "<= 2",
      });
    }

    // Get of 1 GiB vs 1 KiB.
    if (wanted("uds_get_1GiB_vs_1KiB")) {
      const writer = await client.create(GiB, { id: "large" });
      writer.buffer!.fill(7);
      await writer.seal();
      const [larges = [], smalls = []] = await alternate(10, 500, get("large"), get(small));
      report({
        bench: "uds_get_1GiB_vs_1KiB",
        get_1GiB_p50_us: quantile(larges, 0.5) * 1000,
        get_1KiB_p50_us: quantile(smalls, 0.5) * 1000,
        ratio: quantile(larges, 0.5) / quantile(smalls, 0.5),
        target: "<= 2",
      });
      await client.delete("large");
    }

    // Put of 64 MiB vs a copy into touched memory. Between puts (untimed) the
    // daemon has time to prepare memory for the next one, as between puts in
    // real use; back to back, its page allocation sets the pace instead.
    if (wanted("uds_put_64MiB_vs_copy")) {
      const payload = new Uint8Array(64 * MiB).fill(3);
      const touched = new Uint8Array(64 * MiB).fill(1);
      const copies: number[] = [];
      const puts: number[] = [];
      for (let i = 0; i < 12; i++) {
        copies.push(...await timeEach(3, () => touched.set(payload), 1));
        const start = performance.now();
        const id = await client.put(payload);
        puts.push(performance.now() - start);
        await client.delete(id);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      const backToBack = await timeEach(6, async () => {
        await client.delete(await client.put(payload));
      }, 1);
      const copy = quantile(copies, 0.5);
      const put = quantile(puts.slice(2), 0.5);
      report({
        bench: "uds_put_64MiB_vs_copy",
        copy_GBps: 64 * MiB / (copy / 1000) / 1e9,
        put_GBps: 64 * MiB / (put / 1000) / 1e9,
        put_p50_ms: put,
        ratio: copy / put,
        target: ">= 0.7",
        back_to_back_put_and_delete_p50_ms: quantile(backToBack, 0.5),
      });
    }

    // Small puts from one client (pipelined) and from 32 (one at a time each).
    const many = await clients(path, 32);
    opened.push(...many);
    if (wanted("uds_put_4KiB_one_client", "uds_put_4KiB_32_clients")) {
      await warmUp(() => putRate([client], 1, 1, 1000));
      const sequential = await putRate([client], 1, 5, 5000);
      await warmUp(() => putRate([client], 16, 1, 5000));
      const pipelined = await putRate([client], 16, 10, 10_000);
      report({
        bench: "uds_put_4KiB_one_client",
        puts_per_s: pipelined,
        in_flight: 16,
        target: ">= 10000",
        sequential_puts_per_s: sequential,
      });
      await warmUp(() => putRate(many, 32, 1, 5000));
      const together = await putRate(many, 32, 5, 15_000);
      report({ bench: "uds_put_4KiB_32_clients", puts_per_s: together, target: ">= 60000" });
    }

    // Puts each deleted at once: what a cache that turns its objects over does.
    if (wanted("uds_put_delete_4KiB")) {
      await warmUp(() => putDeleteRate([client], 1, 1000));
      const sequential = await putDeleteRate([client], 1, 20_000);
      await warmUp(() => putDeleteRate([client], 16, 5000));
      const pipelined = await putDeleteRate([client], 16, 150_000);
      await warmUp(() => putDeleteRate(many, 32, 5000));
      const together = await putDeleteRate(many, 32, 60_000);
      report({
        bench: "uds_put_delete_4KiB",
        pairs_per_s_one_client: pipelined,
        in_flight: 16,
        sequential_pairs_per_s: sequential,
        pairs_per_s_32_clients: together,
      });
    }

    // Objects C stored for small puts, not taken in yet, listed, evicted, one stat'd, closed.
    if (wanted("uds_waiting_100k_pause")) {
      report({ bench: "uds_waiting_100k_pause", waiting: WAITING, ...await waitingPauses(dir) });
    }

    // 32 busy connections alone, then beside 1000 idle ones in another process.
    if (wanted("uds_32_busy_with_1000_idle")) {
      const getOn = async (c: Client) => {
        using handle = await c.get(small);
        if (handle.bytes[0] === 255) throw new Error("Unexpected byte");
      };
      const before = await rate(many, 3000, getOn);
      const idle = spawn([self, "idle", path, "1000"]);
      await waitFor(idle, "ready");
      const beside = await rate(many, 3000, getOn);
      idle.kill("SIGTERM");
      await idle.status;
      const after = await rate(many, 3000, getOn);
      const alone = (before + after) / 2;
      report({
        bench: "uds_32_busy_with_1000_idle",
        gets_per_s_alone: alone,
        gets_per_s_with_idle: beside,
        ratio: beside / alone,
        target: ">= 0.8",
      });
    }
  } finally {
    await Promise.all(opened.map((c) => c.close()));
    daemon.kill("SIGTERM");
    await daemon.status;
    await Deno.remove(dir, { recursive: true });
  }
}

/** Whether `taskset` can pin processes here. */
async function canPin(): Promise<boolean> {
  try {
    return (await new Deno.Command("taskset", { args: ["-c", "0", "true"] }).output()).success;
  } catch {
    return false;
  }
}

/**
 * Get (1 KiB and 1 GiB) and ping-pong p50s, in ms, with the daemon and the
 * ping-pong server pinned to CPU `serverCpu` and the client measuring them
 * to `clientCpu`; undefined when processes cannot be pinned.
 */
async function placed(
  dir: string,
  serverCpu: number,
  clientCpu: number,
): Promise<{ get: number; large: number; pingpong: number } | undefined> {
  if (!await canPin()) {
    console.error("taskset is missing: no figures with pinned processes");
    return undefined;
  }
  const pin = (cpu: number, args: string[]) =>
    new Deno.Command("taskset", {
      args: ["-c", String(cpu), Deno.execPath(), "run", "-A", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  const daemonPath = `${dir}/placed-${serverCpu}-${clientCpu}.sock`;
  const pingPath = `${dir}/placed-ping-${serverCpu}-${clientCpu}.sock`;
  const cli = new URL("cli.ts", root).pathname;
  const daemon = pin(serverCpu, [
    cli,
    "serve",
    "--socket",
    daemonPath,
    "--capacity",
    "2GiB",
    "--log-level",
    "warn",
  ]);
  const ping = pin(serverCpu, [self, "pingpong", pingPath]);
  try {
    await Promise.all([waitFor(daemon, daemonPath), waitFor(ping, "ready")]);
    const client = pin(clientCpu, [self, "placed-client", daemonPath, pingPath]);
    const output = await client.output();
    if (!output.success) throw new Error("The pinned client failed");
    return JSON.parse(new TextDecoder().decode(output.stdout));
  } finally {
    daemon.kill("SIGTERM");
    await Promise.all([daemon.status, ping.status]);
  }
}

/** The placed-client role: gets and ping-pongs in alternating rounds; prints their p50s in ms. */
async function placedClient(daemonPath: string, pingPath: string): Promise<void> {
  const [client] = await clients(daemonPath, 1);
  const ping = new PingClient(pingPath);
  try {
    const id = await client!.put(new Uint8Array(KiB).fill(1));
    const writer = await client!.create(GiB);
    writer.buffer!.fill(7);
    await writer.seal();
    const get = (id: string) => async () => {
      using handle = await client!.get(id);
      if (handle.bytes[handle.size - 1] === 255) throw new Error("Unexpected byte");
    };
    await warmUp(get(id), get(writer.id));
    const [pings = [], gets = [], larges = []] = await alternate(
      10,
      1000,
      () => ping.once(),
      get(id),
      get(writer.id),
    );
    const p50 = (samples: number[]) => quantile(samples, 0.5);
    console.log(JSON.stringify({ get: p50(gets), large: p50(larges), pingpong: p50(pings) }));
  } finally {
    ping.close();
    await client!.close();
  }
}

/** The idle role: opens `count` connections and holds them until SIGTERM. */
async function idle(path: string, count: number): Promise<void> {
  const { symbols } = native();
  symbols.pk_raise_nofile_limit();
  const fds: number[] = [];
  for (let i = 0; i < count; i++) {
    const fd = symbols.pk_uds_connect(cString(path));
    if (fd < 0) throw new Error(`connect: errno ${-fd}`);
    fds.push(fd);
  }
  console.log("ready");
  await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", resolve));
  for (const fd of fds) symbols.pk_close(fd);
}

if (import.meta.main) {
  const [role, ...args] = Deno.args;
  if (role === "pingpong") pingServer(args[0]!);
  else if (role === "reactor-pingpong") await reactorPingServer(args[0]!);
  else if (role === "idle") await idle(args[0]!, Number(args[1]));
  else if (role === "placed-client") await placedClient(args[0]!, args[1]!);
  else await main(role);
}
