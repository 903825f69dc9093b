/**
 * A runtime that ends with registrations left on its reactor leaves the
 * process running: nothing calls into it once it has gone. A Worker's
 * runtime is told nothing before it ends (no `unload`); a test module's is.
 * Each is run in a child process, which such a call used to kill (SIGSEGV,
 * or an abort on a corrupted heap). And a Worker that ends without closing
 * its clients has their sockets closed as it ends: the daemon drops the
 * client and its leases, and the process keeps no fd of it.
 */
import { loadNative } from "../../native/load.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { socketDir, spawnDaemon } from "../helpers/uds_daemon.ts";

async function run(args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, output: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
}

const helper = (name: string) => new URL(`../helpers/${name}`, import.meta.url).pathname;

Deno.test({
  name: "Workers ended with registrations left on their reactors leave the process running",
  ignore: loadNative() === undefined,
  async fn() {
    const { code, output } = await run(["run", "--allow-all", helper("reactor_worker_child.ts")]);
    assertEquals([code, output.includes("survived")], [0, true], output);
  },
});

Deno.test({
  name: "a test module ended with a registration left on its reactor leaves the run going",
  ignore: loadNative() === undefined,
  async fn() {
    const { code, output } = await run([
      "test",
      "--allow-all",
      "--parallel",
      helper("reactor_left_child.ts"),
      helper("outlasting_child.ts"),
    ]);
    assertEquals(code, 0, output);
  },
});

/**
 * Runs tests/helpers/worker_end_child.ts, with `flags` given the socket's
 * directory, against a daemon of its own: its exit code, output and JSON line.
 */
async function workersEnding(
  flags: (dir: string) => string[],
  args: string[],
): Promise<{ code: number; output: string; result: WorkersEnded }> {
  const dir = await socketDir();
  try {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    const { code, output } = await run([
      "run",
      ...flags(dir),
      helper("worker_end_child.ts"),
      daemon.path,
      ...args,
    ]);
    const last = output.split("\n").findLast((line) => line.startsWith("{"));
    if (last === undefined) throw new Error(`No result (exit code ${code}):\n${output}`);
    return { code, output, result: JSON.parse(last) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

interface Counts {
  clients: number;
  leases: number;
  bytes: number;
}

/** What tests/helpers/worker_end_child.ts prints. */
interface WorkersEnded {
  before: Counts;
  holding: Counts;
  afterFirst: Counts;
  after: Counts;
  bytes: { empty: number; deleted: number };
  own?: { before: { fds: number; threads: number }; after: { fds: number; threads: number } };
}

/** Asserts that the Workers' client came and went, and the object's bytes with it once deleted. */
function assertReleased(
  { before, holding, afterFirst, after, bytes }: WorkersEnded,
  output: string,
) {
  const held = { ...before, clients: before.clients + 1, leases: before.leases + 1 };
  assertEquals(holding, held, output);
  assertEquals(afterFirst, before, `within 2 s of the first Worker's end\n${output}`);
  assertEquals(after, before, `within 2 s of the last Worker's end\n${output}`);
  assertEquals(bytes.deleted, bytes.empty, `the object deleted, its bytes freed\n${output}`);
}

Deno.test({
  name: "Workers terminated with a client holding a READ lease: the daemon drops both, no fd left",
  ignore: loadNative() === undefined,
  async fn() {
    const { code, output, result } = await workersEnding(() => ["-A"], ["terminate", "23"]);
    assertEquals(code, 0, output);
    assertReleased(result, output);
    const { before, after } = result.own!;
    assert(after.fds <= before.fds && after.threads <= before.threads, `fds, threads\n${output}`);
  },
});

Deno.test({
  name: "a Worker that closes itself with a client holding a READ lease: the daemon drops both",
  ignore: loadNative() === undefined,
  async fn() {
    const { code, output, result } = await workersEnding(() => ["-A"], ["close", "1"]);
    assertEquals(code, 0, output);
    assertReleased(result, output);
  },
});

Deno.test({
  name: "a Worker without read access to /proc/self/fd: its client works, the watch is missed once",
  ignore: loadNative() === undefined,
  async fn() {
    const root = new URL("../../", import.meta.url).pathname;
    const { code, output, result } = await workersEnding(
      (dir) => [`--allow-read=${root},${dir}`, "--allow-env", "--allow-ffi"],
      ["terminate", "1", "0"],
    );
    assertEquals(code, 0, output);
    assertEquals(result.holding.leases, result.before.leases + 1, output);
    assertEquals(output.split("stay open until the process exits").length, 2, output);
  },
});
