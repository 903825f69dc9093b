import { describeObject } from "./format.ts";
import { open, parse, positionals, TARGET_FLAGS, TARGET_USAGE } from "./command.ts";

/** The usage text of `packice stat`. */
export const STAT_USAGE = `Usage: packice stat ID [--json]

Shows what the daemon knows of an object: size, state, times, digest, metadata.

  --json   as JSON
${TARGET_USAGE}`;

/** `packice stat`. */
export async function stat(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, { ...TARGET_FLAGS, json: { type: "boolean" } });
  const [id] = positionals(rest, ["ID"]);
  await using client = await open(values);
  const info = await client.stat(id!);
  console.log(values.json ? JSON.stringify(info, null, 2) : describeObject(info));
  return 0;
}
