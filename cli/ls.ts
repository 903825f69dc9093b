import type { ObjectInfo } from "../core/object.ts";
import { formatJson, formatSize, formatTime, table } from "./format.ts";
import { open, parse, positionals, SHOW_FLAGS, TARGET_USAGE } from "./command.ts";

/** Objects printed at a time. */
const PAGE = 1_000;

/** The usage text of `packice ls`. */
export const LS_USAGE = `Usage: packice ls [--long] [--json]

Lists the objects in put order, one id a line, a page at a time.

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
  // Printed a page at a time as they come, in put order: a cache of any size.
  let page: ObjectInfo[] = [];
  let printed = 0;
  const print = () => {
    if (values.json) {
      const text = page.map((info) => formatJson(info).replaceAll("\n", "\n  ")).join(",\n  ");
      if (text.length > 0) console.log(`${printed === 0 ? "[" : ","}\n  ${text}`);
    } else if (values.long) {
      const rows = page.map((info) => [
        formatSize(info.size),
        info.state === "SEALED" ? "sealed" : "creating",
        formatTime(info.createdAt),
        info.id,
      ]);
      if (rows.length > 0) console.log(table(rows, new Set([0])));
    } else {
      console.log(page.map((info) => info.id).join("\n"));
    }
    printed += page.length;
    page = [];
  };
  for await (const info of client.objects({ pageSize: PAGE })) {
    page.push(info);
    if (page.length === PAGE) print();
  }
  if (page.length > 0) print();
  if (values.json) console.log(printed === 0 ? "[]" : "]");
  return 0;
}
