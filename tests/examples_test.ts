/** Runs each script in examples/ as a user would, with small sizes, against a real daemon. */
import { assert, assertEquals } from "./helpers/assert.ts";
import { socketDir, spawnDaemon } from "./helpers/uds_daemon.ts";
import { startCluster } from "./p2p/cluster_daemons.ts";
import { startCountingOrigin } from "./p2p/counting_origin.ts";
import { pattern } from "./helpers/cluster.ts";

const examples = new URL("../examples/", import.meta.url);

async function run(script: string, ...args: string[]): Promise<string> {
  // transformers.js's npm packages stay out of the project's lockfile (see the example).
  const lock = `--lock=${new URL("transformers.lock", examples).pathname}`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", lock, new URL(script, examples).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assert(output.success, `${script} failed: ${stdout}${new TextDecoder().decode(output.stderr)}`);
  return stdout;
}

Deno.test("examples run against a daemon shared by their processes", async (t) => {
  const dir = await socketDir();
  try {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    await t.step("share_file.ts: one process stores a file, another writes it out", async () => {
      const bytes = crypto.getRandomValues(new Uint8Array(65536)).slice();
      const big = new Uint8Array(3 << 20);
      for (let offset = 0; offset < big.length; offset += bytes.length) big.set(bytes, offset);
      await Deno.writeFile(`${dir}/big.bin`, big);
      assert((await run("share_file.ts", "put", daemon.path, `${dir}/big.bin`)).startsWith(
        `stored big.bin: ${big.length} bytes`,
      ));
      await run("share_file.ts", "get", daemon.path, "big.bin", `${dir}/copy.bin`);
      assertEquals(await Deno.readFile(`${dir}/copy.bin`), big);
    });
    await t.step("web_cache.ts: one process puts, another matches", async () => {
      await run("web_cache.ts", "put", daemon.path, "https://example.com/hello", "hi there");
      assertEquals(
        await run("web_cache.ts", "match", daemon.path, "https://example.com/hello"),
        "hi there\n",
      );
      assertEquals(
        await run("web_cache.ts", "match", daemon.path, "https://example.com/other"),
        "miss\n",
      );
    });
    await t.step("transformers_cache.ts: the second load comes from Packice", async () => {
      const out = await run("transformers_cache.ts", "--socket", daemon.path);
      const counts = out.split("\n").filter((line) => line.startsWith("model host"));
      assertEquals(counts.length, 2);
      assertEquals(counts[0], counts[1]);
      assert(!counts[0]!.endsWith(" 0"));
      assert(out.includes("ids: 1,2,3,4,5,6"));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cluster_fetch.ts: three daemons read one URL through, the origin serves it once", async () => {
  const body = pattern(6 << 20, 5);
  await using origin = startCountingOrigin({ body, rate: 12e6 });
  await using cluster = await startCluster(["a", "b", "c"]);
  const sockets = cluster.daemons.map((daemon) => daemon.socket);
  for (let tries = 0; tries < 200; tries++) {
    const views = await Promise.all(cluster.daemons.map((daemon) => daemon.members()));
    if (views.every((view) => view.filter((m) => m.state === "alive").length === 3)) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const lines = (await run("cluster_fetch.ts", origin.url, ...sockets)).trim().split("\n");
  assertEquals(lines.length, 3);
  const answers = new Set(lines.map((line) => line.slice(line.indexOf(":") + 1)));
  assertEquals(answers.size, 1, lines.join("\n"));
  assert([...answers][0]!.startsWith(` 200, ${body.length} bytes, sha256 `), lines[0]);
  assertEquals(origin.requests.length, 1);
});
