/**
 * What an operator running `packice serve` as a service meets: a closed
 * terminal's SIGHUP stops it cleanly, and a start it cannot make is refused
 * with a typed error that names the flag and says what to do.
 */
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { exists, spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";
import { RawConnection } from "../helpers/uds_raw.ts";
import { Op } from "../../transport/uds/protocol.ts";
import { connect } from "../../mod.ts";

testInSocketDir("SIGHUP stops a daemon cleanly: socket and token file removed", async (dir) => {
  const path = `${dir}/p.sock`;
  const daemon = await spawnDaemon(path, ["--http", "127.0.0.1:0"]);
  assert(await exists(`${path}.token`));
  const status = await daemon.stop("SIGHUP");
  assertEquals(status.code, 0, daemon.stderr());
  assertEquals(await exists(path), false);
  assertEquals(await exists(`${path}.token`), false);
});

/** The refusal of a daemon started with `args`: the line it logged. */
async function refusal(path: string, args: string[]): Promise<string> {
  const error = await assertRejects(() => spawnDaemon(path, args), Error);
  return error.message;
}

testInSocketDir("a start that cannot be made says which flag and what to do", async (dir) => {
  const missing = await refusal(`${dir}/no/such/dir/p.sock`, []);
  assert(missing.includes("ERROR INVALID_ARGUMENT: Cannot listen on"), missing);
  assert(missing.includes(`its directory ${dir}/no/such/dir does not exist`), missing);
  assert(missing.includes("--socket"), missing);

  const file = `${dir}/a-file`;
  await Deno.writeTextFile(file, "");
  for (const impl of ["fs", "tiered"]) {
    const notDir = await refusal(`${dir}/p.sock`, ["--impl", impl, "--data-dir", file]);
    assert(notDir.includes(`ERROR INVALID_ARGUMENT: Cannot use --data-dir ${file}`), notDir);
    assert(notDir.includes("give a directory this user can create and write"), notDir);
  }

  // 192.0.2.1 is TEST-NET-1: no interface of a test host has it.
  const absent = await refusal(`${dir}/p.sock`, ["--http", "192.0.2.1:7070", "--token", "t"]);
  assert(absent.includes("no network interface of this host has that address"), absent);
  const fast = await refusal(`${dir}/p.sock`, [
    "--http",
    "127.0.0.1:0",
    "--http-fast",
    "192.0.2.1:0",
  ]);
  assert(fast.includes("Cannot serve GET natively on 192.0.2.1:0: no network interface"), fast);
});

testInSocketDir(
  "a token file every user can read is warned of, a private one is not",
  async (dir) => {
    const file = `${dir}/token`;
    await Deno.writeTextFile(file, "a-chosen-token\n");
    for (const mode of [0o644, 0o600]) {
      await Deno.chmod(file, mode);
      await using daemon = await spawnDaemon(`${dir}/p.sock`, [
        "--http",
        "127.0.0.1:0",
        "--token-file",
        file,
      ]);
      await daemon.stop();
      const warned = daemon.stderr().includes(
        `WARN --token-file ${file} can be read by every user`,
      );
      assertEquals(warned, mode === 0o644, daemon.stderr());
      if (warned) assert(daemon.stderr().includes(`chmod o-r ${file}`), daemon.stderr());
    }
  },
);

testInSocketDir("a client that exits with a reply unread is no warning", async (dir) => {
  const path = `${dir}/p.sock`;
  const daemon = await spawnDaemon(path);
  for (let i = 0; i < 3; i++) {
    using raw = new RawConnection(path);
    raw.send(Op.STATUS, 1, "");
    // The reply lands unread: closing then resets the daemon's end (ECONNRESET).
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await using client = await connect(path);
  assertEquals((await client.metrics()).uds_clients, 1);
  await daemon.stop();
  assertEquals(daemon.stderr(), "");
});
