import { assertEquals } from "./helpers/assert.ts";

Deno.test("mod.ts works when imported by URL from a script outside this project", async () => {
  const dir = await Deno.makeTempDir({ prefix: "packice-url-" });
  try {
    const script = `${dir}/script.ts`;
    const mod = new URL("../mod.ts", import.meta.url).href;
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
