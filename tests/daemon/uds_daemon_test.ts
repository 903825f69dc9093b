/**
 * `packice serve` as a process: start-up time, address, socket mode, clean
 * shutdown on SIGINT and SIGTERM, refusal when a live daemon holds the lock or
 * a live server answers, and replacement of a stale socket file.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { connect } from "../../mod.ts";
import { loadNative } from "../../native/load.ts";
import { exists, spawnDaemon, startTaskFlags, testInSocketDir } from "../helpers/uds_daemon.ts";

const root = new URL("../../", import.meta.url);

/** Runs `cli.ts serve` to completion, for daemons that must refuse to start. */
async function serveOnce(args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...(await startTaskFlags()), new URL("cli.ts", root).pathname, "serve", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(10_000),
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  testInSocketDir(
    `serve starts fast, serves, and on ${signal} stops and removes its socket`,
    async (dir) => {
      const path = `${dir}/packice.sock`;
      const daemon = await spawnDaemon(path);
      assert(daemon.banner.includes(`Packice listening on unix://${path}`), daemon.banner);
      assert(daemon.startupMs < 1000, `started in ${daemon.startupMs} ms`);
      assertEquals((await Deno.lstat(path)).mode! & 0o777, 0o600);
      {
        await using client = await connect(path);
        await client.put("up", { id: "up" });
        assert(await client.has("up"));
      }
      const status = await daemon.stop(signal);
      assertEquals(status.code, 0, daemon.stderr());
      assertEquals(await exists(path), false);
    },
  );
}

testInSocketDir("serve applies --socket-mode", async (dir) => {
  const path = `${dir}/packice.sock`;
  await using _daemon = await spawnDaemon(path, ["--socket-mode", "660"]);
  assertEquals((await Deno.lstat(path)).mode! & 0o777, 0o660);
});

testInSocketDir(
  "serve refuses to start while a live daemon holds the socket's lock",
  async (dir) => {
    const path = `${dir}/packice.sock`;
    await using first = await spawnDaemon(path);
    const second = await serveOnce(["--socket", path]);
    assertEquals(second.code, 1);
    assert(second.stderr.includes(`holds the lock ${path}.lock`), second.stderr);
    await using client = await connect(path);
    assertEquals(await client.has("anything"), false);
    assertEquals((await first.stop()).code, 0);
  },
);

testInSocketDir(
  "serve refuses to start when a server that holds no lock answers on the socket",
  async (dir) => {
    const path = `${dir}/packice.sock`;
    const native = loadNative()!;
    const fd = native.symbols.pk_uds_listen(new TextEncoder().encode(`${path}\0`), 1);
    assert(fd >= 0);
    try {
      const second = await serveOnce(["--socket", path]);
      assertEquals(second.code, 1);
      assert(second.stderr.includes("already answers"), second.stderr);
    } finally {
      native.symbols.pk_close(fd);
    }
  },
);

testInSocketDir("serve replaces a stale socket file", async (dir) => {
  const path = `${dir}/packice.sock`;
  const native = loadNative()!;
  const fd = native.symbols.pk_uds_listen(new TextEncoder().encode(`${path}\0`), 1);
  assert(fd >= 0);
  native.symbols.pk_close(fd);
  assert(await exists(path), "the stale socket file is left behind");
  await using _daemon = await spawnDaemon(path);
  await using client = await connect(path);
  await client.put("fresh");
});

testInSocketDir("serve refuses a socket path that is not a socket", async (dir) => {
  const path = `${dir}/not-a-socket`;
  await Deno.writeTextFile(path, "keep me");
  const result = await serveOnce(["--socket", path]);
  assertEquals(result.code, 1);
  assert(result.stderr.includes("not a socket"), result.stderr);
  assertEquals(await Deno.readTextFile(path), "keep me");
});

testInSocketDir("deno task start serves on $XDG_RUNTIME_DIR/packice.sock", async (dir) => {
  const path = `${dir}/packice.sock`;
  const task = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "start", "--log-level", "warn"],
    cwd: root.pathname,
    env: { XDG_RUNTIME_DIR: dir },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = task.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes(`unix://${path}`)) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  assert(seen.includes(`unix://${path}`), seen);
  {
    await using client = await connect(`unix://${path}`);
    assertEquals(await client.has("x"), false);
  }
  task.kill("SIGTERM");
  const status = await task.status;
  await reader.cancel();
  await task.stderr.cancel();
  assertEquals(status.code, 0);
  assertEquals(await exists(path), false);
});

testInSocketDir("serve --impl fs shares objects that outlive the daemon", async (dir) => {
  const path = `${dir}/packice.sock`;
  const args = ["--impl", "fs", "--data-dir", `${dir}/data`];
  const bytes = new Uint8Array(200 * 1024).map((_, i) => i % 251);
  {
    await using _daemon = await spawnDaemon(path, args);
    await using client = await connect(path);
    await client.put(bytes, { id: "kept", meta: { on: "disk" } });
  }
  await using _again = await spawnDaemon(path, args);
  await using client = await connect(path);
  using handle = await client.get("kept");
  assertEquals([handle.bytes, handle.meta], [bytes, { on: "disk" }]);
});
