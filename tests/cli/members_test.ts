/** `packice members` against real daemons joined with `--join`, through the Unix socket. */
import { assert, assertEquals } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { eventually } from "../helpers/eventually.ts";
import { startCluster } from "../p2p/cluster_daemons.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

const packice = (...args: string[]) => runCli(args);

Deno.test("packice members lists every member of the daemon's cluster with its state", async () => {
  await using cluster = await startCluster(["a", "b", "c"]);
  const a = cluster.daemons[0]!;
  await eventually(
    async () => (await a.members()).filter((m) => m.state === "alive").length === 3,
    "joined",
    { timeout: 5000, interval: 50 },
  );
  const socket = a.socket;
  const listed = await packice("members", "--json", "--target", socket);
  assertEquals(listed.code, 0, listed.stderr);
  const members = JSON.parse(listed.stdout) as { node: string; state: string; address: string }[];
  assertEquals(members.map((m) => [m.node, m.state]).sort(), [
    ["a", "alive"],
    ["b", "alive"],
    ["c", "alive"],
  ]);
  assert(members.every((m) => m.address.startsWith("http://127.0.0.1:")));
  const shown = await packice("members", "--target", socket);
  assertEquals(shown.code, 0, shown.stderr);
  const lines = shown.stdout.trim().split("\n");
  assertEquals(lines.length, 4, shown.stdout);
  assert(lines[0]!.startsWith("NODE"), shown.stdout);
  assert(lines.slice(1).every((line) => / alive /.test(line)), shown.stdout);
});

testInSocketDir("packice members says a daemon without --http is in no cluster", async (dir) => {
  await using daemon = await spawnDaemon(`${dir}/packice.sock`);
  const { code, stderr } = await packice("members", "--target", daemon.path);
  assert(code !== 0);
  assert(stderr.includes("in no cluster"), stderr);
});
