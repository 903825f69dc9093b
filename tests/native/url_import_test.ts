import { assert, assertEquals } from "../helpers/assert.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

const root = new URL("../../", import.meta.url);
const decoder = new TextDecoder();

Deno.test("mod.ts works when imported by URL from a script outside this project", async () => {
  const dir = await Deno.makeTempDir({ prefix: "packice-url-" });
  try {
    const script = `${dir}/script.ts`;
    const mod = new URL("../../mod.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { connect } from ${JSON.stringify(mod)};
await using client = await connect();
const id = await client.put("by url");
using handle = await client.get(id);
console.log(new TextDecoder().decode(handle.bytes));
`,
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--no-lock", "--allow-all", script],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(code, 0, new TextDecoder().decode(stderr));
    assertEquals(new TextDecoder().decode(stdout).trim(), "by url");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The repository over HTTP, as a URL import or a JSR install fetches it. */
function serveRepository(): Deno.HttpServer<Deno.NetAddr> & { fetched: string[] } {
  const fetched: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      fetched.push(path);
      try {
        return new Response(await Deno.readFile(new URL(`.${path}`, root)));
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  return Object.assign(server, { fetched });
}

testInSocketDir(
  "imported by an http URL with an empty DENO_DIR and cache, connect(socket) maps the daemon's memory on first use",
  async (dir) => {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    await using server = serveRepository();
    const host = `127.0.0.1:${server.addr.port}`;
    // Nothing of Packice cached: modules, nor the native library. npm packages, which
    // a registry would give, are shared so that the test needs no network.
    const denoDir = `${dir}/deno`;
    await Deno.mkdir(denoDir);
    await Deno.symlink(`${await npmCache()}`, `${denoDir}/npm`);
    const cache = `${dir}/cache`;
    const script = `${dir}/client.ts`;
    await Deno.writeTextFile(
      script,
      `import { connect } from "http://${host}/mod.ts";
await using client = await connect(${JSON.stringify(daemon.path)});
const id = await client.put("over the socket", { id: "u-" + Deno.args[0] });
using handle = await client.get(id);
console.log(new TextDecoder().decode(handle.bytes));
`,
    );
    const run = async (permissions: string[], round: string) => {
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-config", "--no-lock", ...permissions, script, round],
        env: { DENO_DIR: denoDir, XDG_CACHE_HOME: cache, HOME: dir },
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
    };
    // A private peer needs no library: without the permissions to build one, it still works.
    const inProcess = `${dir}/private.ts`;
    await Deno.writeTextFile(
      inProcess,
      `import { connect } from "http://${host}/mod.ts";
await using client = await connect();
console.log(await client.has(await client.put("private")));
`,
    );
    const { code, stdout } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--no-lock",
        `--allow-import=${host}`,
        "--allow-read",
        "--allow-env",
        "--allow-ffi",
        inProcess,
      ],
      env: { DENO_DIR: denoDir, XDG_CACHE_HOME: cache, HOME: dir },
      stdout: "piped",
      stderr: "null",
    }).output();
    assertEquals([code, decoder.decode(stdout)], [0, "true\n"]);

    // First use: the permissions the README lists to build the library. Without it a
    // Unix socket cannot be used at all, so the socket's answer shows it was built.
    const first = await run([
      `--allow-import=${host}`,
      `--allow-net=${host}`,
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-ffi",
      "--allow-run=cc,gcc",
    ], "1");
    assertEquals(first.code, 0, first.stderr);
    assertEquals(first.stdout, "over the socket\n");
    assert(!first.stderr.includes("unavailable"), first.stderr);
    assert(server.fetched.includes("/native/packice.c"), "the C source was fetched");
    assert((await Deno.stat(`${cache}/packice/${await version()}/libpackice.so`)).isFile);
    // Later: a client needs only these.
    const later = await run([
      `--allow-import=${host}`,
      "--allow-read",
      "--allow-env",
      "--allow-ffi",
    ], "2");
    assertEquals([later.code, later.stdout], [0, "over the socket\n"], later.stderr);
  },
);

async function npmCache(): Promise<string> {
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return JSON.parse(decoder.decode(stdout)).npmCache;
}

async function version(): Promise<string> {
  return JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).version;
}
