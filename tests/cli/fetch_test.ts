/** `packice fetch URL` through a real daemon, against a local origin that counts its requests. */
import { assert, assertEquals } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

const packice = (...args: string[]) => runCli(args);

testInSocketDir(
  "packice fetch downloads once, then answers from the daemon's cache",
  async (dir) => {
    const body = new Uint8Array(200_000).map((_, i) => (i * 31 + 7) & 255);
    const seen: (string | null)[] = [];
    await using origin = Deno.serve(
      { port: 0, hostname: "127.0.0.1", onListen() {} },
      (request) => {
        seen.push(request.headers.get("authorization"));
        if (new URL(request.url).pathname !== "/model.bin") {
          return new Response("no", {
            status: 404,
          });
        }
        return new Response(body, { headers: { "cache-control": "max-age=3600", etag: '"v1"' } });
      },
    );
    const url = `http://127.0.0.1:${origin.addr.port}/model.bin`;
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    const target = ["--target", daemon.path];

    const first = await packice(
      "fetch",
      url,
      "-o",
      `${dir}/first.bin`,
      "-H",
      "Authorization: Bearer s3",
      ...target,
    );
    assertEquals(first.code, 0, first.stderr);
    assertEquals(await Deno.readFile(`${dir}/first.bin`), body);
    const again = await packice("fetch", url, ...target);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(again.bytes, body);
    assertEquals(seen, ["Bearer s3"], "the second fetch is answered by the daemon");

    const reloaded = await packice("fetch", url, "--reload", "-o", "-", ...target);
    assertEquals(reloaded.code, 0, reloaded.stderr);
    assertEquals(seen.length, 2);

    const missing = await packice("fetch", `http://127.0.0.1:${origin.addr.port}/nope`, ...target);
    assert(missing.code !== 0);
    assert(missing.stderr.includes("404"), missing.stderr);
  },
);

testInSocketDir("get, cat, stat and rm name a fetched URL's object by its URL", async (dir) => {
  const body = new Uint8Array(50_000).map((_, i) => (i * 13) & 255);
  let gets = 0;
  await using origin = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => {
    gets++;
    return new Response(body, { headers: { "cache-control": "max-age=3600" } });
  });
  const url = `http://127.0.0.1:${origin.addr.port}/data/weights.bin?rev=2`;
  await using daemon = await spawnDaemon(`${dir}/packice.sock`);
  const target = ["--target", daemon.path];
  assertEquals((await packice("fetch", url, "-o", `${dir}/fetched.bin`, ...target)).code, 0);

  const stat = await packice("stat", url, "--json", ...target);
  assertEquals(stat.code, 0, stat.stderr);
  assertEquals(JSON.parse(stat.stdout).size, body.length);
  assertEquals((await packice("cat", url, ...target)).bytes, body);
  const got = await runCli(["get", url, ...target], { cwd: dir });
  assertEquals(got.code, 0, got.stderr);
  assertEquals(await Deno.readFile(`${dir}/weights.bin`), body, "named by the URL's last segment");
  const bare = await packice("get", `http://127.0.0.1:${origin.addr.port}/`, ...target);
  assertEquals(bare.code, 2, "a URL without a file name needs -o");
  assertEquals(gets, 1, "get, cat and stat never download");

  assertEquals((await packice("rm", url, ...target)).code, 0);
  assertEquals((await packice("stat", url, ...target)).code, 3);
});
