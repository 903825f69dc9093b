import { assert, assertEquals } from "../helpers/assert.ts";

Deno.test("without the native library, peers fall back to plain memory with one warning", async () => {
  const child = new URL("../helpers/fallback_child.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", child],
    env: { PACKICE_NATIVE_LIB: "none" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(stderr);
  assertEquals(code, 0, err);
  const result = JSON.parse(new TextDecoder().decode(stdout));
  assertEquals(result, { text: "works without native", deleted: true });
  const warnings = err.split("\n").filter((line) => /zero-copy/i.test(line));
  assertEquals(warnings.length, 1, err);
  assert(/unavailable/i.test(warnings[0]!));
});
