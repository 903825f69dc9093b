/** Runs TypeScript source in a child `deno run`, for what one test process cannot show itself. */
import { assertEquals } from "./assert.ts";

/**
 * Runs `script` (read from standard input) with `permissions` (none by
 * default: the native library cannot load then) and returns what it printed,
 * trimmed, once it exited with code 0.
 */
export async function runDenoScript(
  script: string,
  permissions: readonly string[] = [],
): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--quiet", ...permissions, "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const output = await child.output();
  assertEquals(output.code, 0);
  return new TextDecoder().decode(output.stdout).trim();
}
