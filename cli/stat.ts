import { describeObject, formatJson } from "./format.ts";
import { open, parse, positionals, SHOW_FLAGS, TARGET_USAGE } from "./command.ts";

/** The usage text of `packice stat`. */
export const STAT_USAGE = `Usage: packice stat ID [--json]

Shows what the daemon knows of an object: size, state, times, digest, metadata.

  --json   as JSON
${TARGET_USAGE}`;

/** `packice stat`. */
export async function stat(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, SHOW_FLAGS);
  const [id] = positionals(rest, ["ID"]);
  await using client = await open(values);
  const info = await client.stat(id!);
  console.log(values.json ? formatJson(info) : describeObject(info));
  return 0;
}
