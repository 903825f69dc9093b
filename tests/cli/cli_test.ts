import { EXIT_CODES, EXIT_USAGE } from "../../cli/exit_codes.ts";
import { formatTime } from "../../cli/format.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

function pattern(size: number, seed = 7): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

testInSocketDir("put, stat, get, cat, ls and rm move files through a real daemon", async (dir) => {
  await using daemon = await spawnDaemon(`${dir}/packice.sock`, ["--capacity", "64MiB"]);
  const env = { PACKICE_TARGET: daemon.path };
  const bytes = pattern(3 << 20);
  await Deno.writeFile(`${dir}/in.bin`, bytes);

  const put = await runCli(
    ["put", `${dir}/in.bin`, "--id", "in.bin", "--meta", "content-type=x/y", "--meta", "k=v=w"],
    { env },
  );
  assertEquals([put.code, put.stdout, put.stderr], [0, "in.bin\n", ""]);

  const stat = await runCli(["stat", "in.bin", "--json"], { env });
  assertEquals(stat.code, 0, stat.stderr);
  const info = JSON.parse(stat.stdout);
  assertEquals([info.size, info.state, info.meta], [bytes.length, "SEALED", {
    "content-type": "x/y",
    k: "v=w",
  }]);
  const human = await runCli(["stat", "in.bin"], { env });
  assert(human.stdout.includes("3.0 MiB (3145728 bytes)"), human.stdout);
  assert(!human.stdout.includes("expires:"), human.stdout);
  const expiring = await runCli(["put", "-", "--id", "expiring", "--ttl", "1h"], {
    env,
    stdin: new TextEncoder().encode("for an hour"),
  });
  assertEquals(expiring.code, 0, expiring.stderr);
  const expiry =
    JSON.parse((await runCli(["stat", "expiring", "--json"], { env })).stdout).expiresAt;
  const shown = (await runCli(["stat", "expiring"], { env })).stdout;
  assert(shown.includes(`expires:  ${formatTime(expiry)}`), shown);
  assertEquals((await runCli(["rm", "expiring"], { env })).code, 0);

  const get = await runCli(["get", "in.bin", "-o", `${dir}/out.bin`], { env });
  assertEquals([get.code, get.stdout, get.stderr], [0, "", ""]);
  assertEquals(await Deno.readFile(`${dir}/out.bin`), bytes);
  // Without -o, a file named after the id, in the working directory.
  assertEquals((await runCli(["get", "in.bin"], { env, cwd: dir })).code, 0);
  assertEquals(await Deno.readFile(`${dir}/in.bin`), bytes);

  const cat = await runCli(["cat", "in.bin"], { env });
  assertEquals(cat.code, 0, cat.stderr);
  assertEquals(cat.bytes, bytes);

  const piped = await runCli(["put", "-", "--id", "piped"], {
    env,
    stdin: new TextEncoder().encode("from a pipe"),
  });
  assertEquals([piped.code, piped.stdout], [0, "piped\n"], piped.stderr);
  assertEquals((await runCli(["get", "piped", "-o", "-"], { env })).stdout, "from a pipe");

  // Standard input redirected from a file goes in with its size known.
  const redirected = await new Deno.Command("sh", {
    args: [
      "-c",
      `"$0" run -A cli.ts put - --id redirected < "$1"`,
      Deno.execPath(),
      `${dir}/in.bin`,
    ],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(redirected.stdout), "redirected\n");
  assertEquals((await runCli(["cat", "redirected"], { env })).bytes, bytes);
  assertEquals((await runCli(["rm", "redirected"], { env })).code, 0);

  const ls = await runCli(["ls"], { env });
  assertEquals(ls.stdout, "in.bin\npiped\n");
  const long = await runCli(["ls", "--long"], { env });
  assert(/^ *3\.0 MiB +sealed .+ in\.bin$/m.test(long.stdout), long.stdout);
  assert(/^ *11 B +sealed .+ piped$/m.test(long.stdout), long.stdout);
  const listed = JSON.parse((await runCli(["ls", "--json"], { env })).stdout);
  assertEquals(listed.map((object: { id: string; size: number }) => [object.id, object.size]), [
    ["in.bin", bytes.length],
    ["piped", 11],
  ]);

  const rm = await runCli(["rm", "in.bin", "missing", "piped"], { env });
  assertEquals(rm.code, EXIT_CODES.NOT_FOUND);
  assert(rm.stderr.includes("NOT_FOUND"), rm.stderr);
  assertEquals((await runCli(["ls"], { env })).stdout, "");
});

testInSocketDir(
  "each failure exits with the code of its error, as --help documents",
  async (dir) => {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`, ["--capacity", "1MiB"]);
    const env = { PACKICE_TARGET: daemon.path };
    const missing = await runCli(["get", "nope", "-o", `${dir}/nope`], { env });
    assertEquals(missing.code, EXIT_CODES.NOT_FOUND);
    assert(missing.stderr.includes("NOT_FOUND"), missing.stderr);
    assertEquals([...Deno.readDirSync(dir)].map((entry) => entry.name).sort(), [
      "packice.sock",
      "packice.sock.lock",
    ], "a failed get leaves no file");

    await Deno.writeFile(`${dir}/big`, new Uint8Array(2 << 20));
    assertEquals((await runCli(["put", `${dir}/big`], { env })).code, EXIT_CODES.CAPACITY_EXCEEDED);
    await Deno.writeTextFile(`${dir}/small`, "small");
    assertEquals((await runCli(["put", `${dir}/small`, "--id", "s"], { env })).code, 0);
    assertEquals(
      (await runCli(["put", `${dir}/small`, "--id", "s"], { env })).code,
      EXIT_CODES.ALREADY_EXISTS,
    );
    assertEquals((await runCli(["put", `${dir}/absent`], { env })).code, 18);
    assertEquals((await runCli(["put"], { env })).code, EXIT_USAGE);
    assertEquals((await runCli(["ls", "--bogus"], { env })).code, EXIT_USAGE);
    assertEquals((await runCli(["frobnicate"], { env })).code, EXIT_USAGE);

    const help = await runCli(["--help"]);
    assertEquals(help.code, 0);
    for (const [code, exit] of Object.entries(EXIT_CODES)) {
      assert(new RegExp(`^ +${exit}  ${code}`, "m").test(help.stdout), `${code} in --help`);
    }
  },
);

Deno.test("a command's --help prints its usage on standard output, before anything else is checked", async () => {
  // No daemon, and `put` without its FILE: the help comes first all the same.
  for (const command of ["put", "members"]) {
    const help = await runCli([command, "--help"], {
      env: { PACKICE_TARGET: "/nonexistent.sock" },
    });
    assertEquals([help.code, help.stderr], [0, ""]);
    assert(help.stdout.startsWith(`Usage: packice ${command}`), help.stdout);
  }
});

testInSocketDir("status shows capacity, use, clients, version and zero-copy", async (dir) => {
  await using daemon = await spawnDaemon(`${dir}/packice.sock`, ["--capacity", "8MiB"]);
  const env = { PACKICE_TARGET: `unix://${daemon.path}` };
  await Deno.writeFile(`${dir}/one`, new Uint8Array(1 << 20));
  assertEquals((await runCli(["put", `${dir}/one`], { env })).code, 0);
  const json = await runCli(["status", "--json"], { env });
  assertEquals(json.code, 0, json.stderr);
  const status = JSON.parse(json.stdout);
  assertEquals(status.version, JSON.parse(await Deno.readTextFile("deno.json")).version);
  assertEquals([status.pid, status.impl, status.zeroCopy], [daemon.process.pid, "mem", true]);
  assertEquals([status.stats.capacity, status.stats.bytes, status.stats.objects], [
    8 << 20,
    1 << 20,
    1,
  ]);
  assertEquals(status.clients, 1, "the status command itself");
  assert(status.uptime > 0);
  const human = (await runCli(["status"], { env })).stdout;
  for (
    const line of [/^capacity: +8\.0 MiB$/m, /^used: +1\.0 MiB \(12\.5%\)$/m, /^free: +7\.0 MiB$/m]
  ) {
    assert(line.test(human), `${line} in:\n${human}`);
  }
  assert(/^zero-copy: +on$/m.test(human), human);
});

testInSocketDir("no daemon: the error names the socket and says what to do", async (dir) => {
  const result = await runCli(["ls"], { env: { PACKICE_TARGET: `${dir}/none.sock` } });
  assertEquals(result.code, EXIT_CODES.STORE_UNAVAILABLE);
  assertEquals(
    result.stderr,
    `packice: no daemon at ${dir}/none.sock — start one with \`packice serve\` or set PACKICE_TARGET\n`,
  );
  // The default: the daemon's default socket, under XDG_RUNTIME_DIR.
  const fallback = await runCli(["status"], { env: { XDG_RUNTIME_DIR: dir } });
  assert(fallback.stderr.includes(`no daemon at ${dir}/packice.sock`), fallback.stderr);
});

testInSocketDir("over HTTP, the CLI finds the token the daemon made for its user", async (dir) => {
  // The default socket of this user, so that the token file is where clients look.
  const socket = `${dir}/packice.sock`;
  await using _daemon = await spawnDaemon(socket, ["--http", "127.0.0.1:0"]);
  const url = (await Deno.readTextFile(`${socket}.token`)).split("\n")[1]!;
  assert(url.startsWith("http://127.0.0.1:"), url);
  const env = { XDG_RUNTIME_DIR: dir, PACKICE_TARGET: url };
  await Deno.writeTextFile(`${dir}/x`, "over http");
  const put = await runCli(["put", `${dir}/x`, "--id", "x"], { env });
  assertEquals([put.code, put.stdout], [0, "x\n"], put.stderr);
  assertEquals((await runCli(["cat", "x"], { env })).stdout, "over http");
  const status = JSON.parse((await runCli(["status", "--json"], { env })).stdout);
  assert(status.addresses.includes(url), status.addresses);
  // Elsewhere the file is not found by itself: the error says how to give it.
  const refused = await runCli(["ls"], { env: { PACKICE_TARGET: url } });
  assertEquals(refused.code, EXIT_CODES.UNAUTHORIZED);
  assert(refused.stderr.includes("PACKICE_TOKEN_FILE"), refused.stderr);
  const named = await runCli(["ls"], {
    env: { PACKICE_TARGET: url, PACKICE_TOKEN_FILE: `${socket}.token` },
  });
  assertEquals([named.code, named.stdout], [0, "x\n"], named.stderr);
  const token = (await Deno.readTextFile(`${socket}.token`)).split("\n")[0]!;
  const flag = await runCli(["ls", "--target", url, "--token", token]);
  assertEquals([flag.code, flag.stdout], [0, "x\n"], flag.stderr);
});
