/**
 * The lock a daemon holds on `<socket>.lock`: of daemons started together on
 * one path exactly one serves, the others refuse at once; a killed daemon's
 * lock does not outlive it; a clean stop leaves the path ready for the next.
 */
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { type DaemonProcess, exists, spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";
import { connect } from "../../mod.ts";
import { loadNative } from "../../native/load.ts";

const gatedServe = new URL("../helpers/gated_serve_child.ts", import.meta.url);

/** Leaves a socket file at `path` that no process listens on, as a crashed daemon does. */
function leaveStaleSocket(path: string): void {
  const native = loadNative()!;
  const fd = native.symbols.pk_uds_listen(new TextEncoder().encode(`${path}\0`), 1);
  assert(fd >= 0, `cannot create a stale socket at ${path}`);
  native.symbols.pk_close(fd);
}

/** Puts an object through the socket at `path` and reads it back. */
async function roundTrip(path: string, id: string): Promise<void> {
  await using client = await connect(path);
  await client.put(`bytes of ${id}`, { id });
  using handle = await client.get(id);
  assertEquals(new TextDecoder().decode(handle.bytes), `bytes of ${id}`);
}

/** Starts `count` daemons on `path` released by one gate, and waits until each listens or exits. */
async function startTogether(
  dir: string,
  path: string,
  count: number,
): Promise<PromiseSettledResult<DaemonProcess>[]> {
  const gate = `${dir}/gate`;
  using holder = await Deno.open(gate, { write: true, create: true });
  await holder.lock(true);
  const started = Array.from(
    { length: count },
    () => spawnDaemon(path, ["--gate", gate], gatedServe),
  );
  const waiting = await eventually(
    async () => (await gateFiles(dir)).length === count + 1,
    `${count} daemons wait at the gate`,
    { timeout: 20_000 },
  ).catch((error) => error);
  await holder.unlock();
  const results = await Promise.allSettled(started);
  if (waiting instanceof Error) {
    for (const r of results) if (r.status === "fulfilled") await r.value.stop();
    throw waiting;
  }
  for (const file of await gateFiles(dir)) await Deno.remove(file);
  return results;
}

/** The gate file and the files by which children say they wait at it. */
async function gateFiles(dir: string): Promise<string[]> {
  const names = (await Array.fromAsync(Deno.readDir(dir))).map((entry) => entry.name);
  return names.filter((name) => name.startsWith("gate")).map((name) => `${dir}/${name}`);
}

testInSocketDir("of two daemons started at once on one path, exactly one serves", async (dir) => {
  const path = `${dir}/packice.sock`;
  for (let round = 0; round < 6; round++) {
    // Every other round starts over a stale socket file, where both daemons would unlink it.
    if (round % 2 === 1) leaveStaleSocket(path);
    const results = await startTogether(dir, path, 2);
    const served = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
    const refused = results.flatMap((r) => r.status === "rejected" ? [String(r.reason)] : []);
    try {
      assertEquals(served.length, 1, `round ${round}: ${refused.join("\n")}`);
      assertEquals(refused.length, 1, `round ${round}`);
      const [message] = refused;
      assert(message!.includes("exited with code 1"), message);
      assert(
        message!.includes(`Cannot listen on ${path}: another daemon holds the lock ${path}.lock`),
        message,
      );
      await roundTrip(path, `round-${round}`);
    } finally {
      for (const daemon of served) await daemon.stop();
    }
    assertEquals(await exists(path), false, "the winner removes its socket");
  }
});

testInSocketDir(
  "a daemon refuses at once, leaving the socket alone, while its lock is held",
  async (dir) => {
    const path = `${dir}/packice.sock`;
    leaveStaleSocket(path);
    const before = await Deno.lstat(path);
    using lock = await Deno.open(`${path}.lock`, { write: true, create: true });
    await lock.lock(true);
    const refused = await assertRejects(() => spawnDaemon(path), Error, "exited with code 1");
    assert(refused.message.includes(`another daemon holds the lock ${path}.lock`), refused.message);
    assertEquals(
      (await Deno.lstat(path)).ino,
      before.ino,
      "the stale check must wait for the lock",
    );
  },
);

testInSocketDir("a daemon starts on the path of one that was SIGKILLed", async (dir) => {
  const path = `${dir}/packice.sock`;
  const killed = await spawnDaemon(path);
  await roundTrip(path, "before");
  assertEquals((await killed.stop("SIGKILL")).signal, "SIGKILL");
  assert(await exists(path), "a killed daemon leaves its socket file");
  assert(await exists(`${path}.lock`), "a killed daemon leaves its lock file");
  await using _next = await spawnDaemon(path);
  await roundTrip(path, "after");
});

testInSocketDir(
  "a daemon stopped by SIGTERM removes its socket, and the next one starts",
  async (dir) => {
    const path = `${dir}/packice.sock`;
    const first = await spawnDaemon(path);
    await roundTrip(path, "first");
    assertEquals((await first.stop("SIGTERM")).code, 0, first.stderr());
    assertEquals(await exists(path), false);
    await using _next = await spawnDaemon(path);
    await roundTrip(path, "next");
  },
);
