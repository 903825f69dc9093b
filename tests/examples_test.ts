/** Runs each script in examples/ as a user would, with small sizes, against a real daemon. */
import { assert, assertEquals } from "./helpers/assert.ts";
import { socketDir, spawnDaemon } from "./helpers/uds_daemon.ts";

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
