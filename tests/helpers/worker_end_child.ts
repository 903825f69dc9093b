/**
 * Run by tests/native/reactor_teardown_test.ts: Workers that each take a
 * READ lease through their own client, then end without closing it
 * (`terminate` by this process, or `close`: `self.close()` inside), COUNT
 * of them one after the other, all but the first while busy with requests. Prints one JSON line: the daemon's clients,
 * leases and bytes before, while the first Worker holds its lease, once it
 * has ended and once they all have (each polled for up to PATIENCE_MS), the bytes
 * once the object is deleted, and, for COUNT over 3, this process's open fds
 * and threads after the third Worker has ended and after the last.
 *
 * Usage: worker_end_child.ts SOCKET terminate|close COUNT [PATIENCE_MS, 2000 unless given]
 */
import { connect, type UdsPeer } from "../../mod.ts";

const [socket, end, count, patience = "2000"] = Deno.args as [
  string,
  "terminate" | "close",
  string,
  string?,
];
const ID = "held";
/** Workers run before this process's fds and threads are counted. */
const WARM = 3;

await using client = await connect(socket);
const peer = client.peer as UdsPeer;

interface Counts {
  readonly clients: number;
  readonly leases: number;
  readonly bytes: number;
}

/** What the daemon counts of its clients, their leases and its bytes. */
async function daemon(): Promise<Counts> {
  const { clients, stats: { leases, bytes } } = await peer.status();
  return { clients, leases, bytes };
}

/** Polls `now` for up to PATIENCE_MS until `done` says it is; its last value. */
async function within<T>(now: () => T | Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + Number(patience);
  for (;;) {
    const value = await now();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((later) => setTimeout(later, 20));
  }
}

/** This process's open fds and threads. */
function own(): { fds: number; threads: number } {
  const status = Deno.readTextFileSync("/proc/self/status");
  return {
    fds: [...Deno.readDirSync("/proc/self/fd")].length,
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)![1]),
  };
}

/**
 * Runs a Worker until it holds its lease, then ends it: the first at once,
 * the others while they get the object again and again, up to 20 ms later.
 */
async function holdAndEnd(): Promise<void> {
  const worker = new Worker(new URL("./worker_end_worker.ts", import.meta.url), { type: "module" });
  const told = new Promise((resolve, reject) => {
    worker.onmessage = resolve;
    worker.onerror = reject;
  });
  const busy = holding !== undefined;
  worker.postMessage({ socket, id: ID, busy });
  await told;
  holding ??= await daemon();
  if (busy) await new Promise((later) => setTimeout(later, Math.random() * 20));
  if (end === "terminate") worker.terminate();
  else worker.postMessage("close");
}

const released = (before: Counts) => (now: Counts) =>
  now.clients === before.clients && now.leases === before.leases;

const empty = await daemon();
await client.put(new Uint8Array(64 * 1024).fill(7), { id: ID });
const before = await daemon();
let holding: Counts | undefined;
await holdAndEnd();
const afterFirst = await within(daemon, released(before));
let counted: { before: ReturnType<typeof own>; after: ReturnType<typeof own> } | undefined;
if (Number(count) > WARM) {
  // Deno keeps fds and threads made for its first Workers (and the death watch its thread).
  for (let i = 1; i < WARM; i++) await holdAndEnd();
  await within(daemon, released(before));
  const ownBefore = own();
  for (let i = WARM; i < Number(count); i++) await holdAndEnd();
  // Threads only count down: the pools' idle threads go by themselves.
  const none = (now: ReturnType<typeof own>) =>
    now.fds <= ownBefore.fds && now.threads <= ownBefore.threads;
  counted = { before: ownBefore, after: await within(own, none) };
}
const after = await within(daemon, released(before));
await client.delete(ID);
const deleted = await within(daemon, (now) => now.bytes === empty.bytes);
console.log(JSON.stringify({
  before,
  holding,
  afterFirst,
  after,
  bytes: { empty: empty.bytes, deleted: deleted.bytes },
  own: counted,
}));
