import { describeObject, formatJson } from "./format.ts";
import { objectId, open, parse, positionals, SHOW_FLAGS, TARGET_USAGE } from "./command.ts";

/** The usage text of `packice stat`. */
export const STAT_USAGE = `Usage: packice stat ID|URL [--json]

Shows what the daemon knows of an object: size, state, times, digest, metadata.
A URL names the object "packice fetch URL" cached.

  --json   as JSON
${TARGET_USAGE}`;

/** `packice stat`. */
export async function stat(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, SHOW_FLAGS);
  const [argument] = positionals(rest, ["ID"]);
  await using client = await open(values);
  const info = await client.stat(objectId(argument!));
  console.log(values.json ? formatJson(info) : describeObject(info));
  return 0;
}
