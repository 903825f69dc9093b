import {
  objectId,
  open,
  parse,
  report,
  TARGET_FLAGS,
  TARGET_USAGE,
  UsageError,
} from "./command.ts";

/** The usage text of `packice rm`. */
export const RM_USAGE = `Usage: packice rm ID|URL...

Deletes objects. Readers that hold one keep its bytes until they let go. Each
id that fails is reported; the exit code is that of the first failure. A URL
names the object "packice fetch URL" cached.

${TARGET_USAGE}`;

/** `packice rm`. */
export async function rm(args: string[]): Promise<number> {
  const { values, positionals: ids } = parse(args, TARGET_FLAGS);
  if (ids.length === 0) throw new UsageError("missing ID");
  await using client = await open(values);
  let code = 0;
  for (const id of ids) {
    try {
      await client.delete(objectId(id));
    } catch (error) {
      const failed = report(error);
      if (code === 0) code = failed;
    }
  }
  return code;
}
