import { formatJson, formatSize, formatTime, table } from "./format.ts";
import { open, parse, positionals, SHOW_FLAGS, TARGET_USAGE } from "./command.ts";

/** The usage text of `packice ls`. */
export const LS_USAGE = `Usage: packice ls [--long] [--json]

Lists the objects, one id a line.

  -l, --long   size, state, creation time and id
  --json       every field, as a JSON array
${TARGET_USAGE}`;

/** `packice ls`. */
export async function ls(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, {
    ...SHOW_FLAGS,
    long: { type: "boolean", short: "l" },
  });
  positionals(rest, []);
  await using client = await open(values);
  const objects = (await client.list()).sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  if (values.json) {
    console.log(formatJson(objects));
  } else if (values.long) {
    const rows = objects.map((info) => [
      formatSize(info.size),
      info.state === "SEALED" ? "sealed" : "creating",
      formatTime(info.createdAt),
      info.id,
    ]);
    if (rows.length > 0) console.log(table(rows, new Set([0])));
  } else {
    for (const info of objects) console.log(info.id);
  }
  return 0;
}
