import { assert, assertEquals } from "../helpers/assert.ts";
import { socketDir, spawnDaemon } from "../helpers/uds_daemon.ts";
import { tinyTokenizerFiles } from "../../examples/tiny_tokenizer.ts";
import { type OriginFile, startOrigin } from "./origin.ts";

const example = new URL("../../examples/transformers_cache.ts", import.meta.url).pathname;
// transformers.js's npm packages stay out of the project's lockfile (see the example).
const lock = new URL("../../examples/transformers.lock", import.meta.url).pathname;

async function load(socket: string, host: string): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--lock=${lock}`, example, "--socket", socket, "--host", host],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assert(output.success, `${stdout}${new TextDecoder().decode(output.stderr)}`);
  return stdout;
}

Deno.test("transformers.js loads a model through a PackiceCache shared by two processes", async () => {
  const files: Record<string, OriginFile> = {};
  for (const [name, body] of Object.entries(tinyTokenizerFiles())) {
    files[`/tiny/tokenizer/resolve/main/${name}`] = { body };
  }
  await using origin = startOrigin(files);
  const dir = await socketDir();
  try {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    const expected = "model_type: bert; ids: 1,2,3,4,5,6\n";
    assertEquals(await load(daemon.path, `${origin.url}/`), expected);
    const first = origin.count();
    assert(first >= 3, `the first load asks the model host: ${origin.requests}`);
    for (const name of ["config.json", "tokenizer.json", "tokenizer_config.json"]) {
      assert(origin.requests.includes(`GET /tiny/tokenizer/resolve/main/${name}`));
    }
    // Another process on the same daemon: every file comes from Packice.
    assertEquals(await load(daemon.path, `${origin.url}/`), expected);
    assertEquals(origin.count(), first);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
