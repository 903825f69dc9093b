import { writeWhole } from "../integrations/file_io.ts";
import {
  objectId,
  open,
  parse,
  positionals,
  TARGET_FLAGS,
  TARGET_USAGE,
  UsageError,
} from "./command.ts";
import { getTo } from "./transfer.ts";

/** The usage text of `packice get`. */
export const GET_USAGE = `Usage: packice get ID|URL [-o FILE|-]

Writes an object to FILE (default: a file named ID, or the URL's last path
segment, in this directory), or to standard output with -o -. A URL names the
object "packice fetch URL" cached (get never downloads it). A failed get
leaves no partial file.

  -o, --output FILE  where to write
${TARGET_USAGE}`;

/** The usage text of `packice cat`. */
export const CAT_USAGE = `Usage: packice cat ID|URL

Writes an object to standard output (a URL: the object "packice fetch URL" cached).

${TARGET_USAGE}`;

/** `packice get`. */
export async function get(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, {
    ...TARGET_FLAGS,
    output: { type: "string", short: "o" },
  });
  const [argument] = positionals(rest, ["ID"]);
  const id = objectId(argument!);
  const output = values.output ?? defaultOutput(argument!);
  await using client = await open(values);
  if (output === "-") return await toStdout(client, id);
  await writeWhole(output, async (file) => {
    await getTo(client, id, file, `get ${argument}`);
  }, 0o644);
  return 0;
}

/** The file `get` writes without -o: the id, or a URL's last path segment. */
function defaultOutput(argument: string): string {
  if (objectId(argument) === argument) return argument;
  const name = new URL(argument).pathname.split("/").at(-1);
  if (!name) throw new UsageError(`${argument} names no file: give -o FILE`);
  return name;
}

/** `packice cat`. */
export async function cat(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, TARGET_FLAGS);
  const [argument] = positionals(rest, ["ID"]);
  await using client = await open(values);
  return await toStdout(client, objectId(argument!));
}

async function toStdout(client: Awaited<ReturnType<typeof open>>, id: string): Promise<number> {
  try {
    await getTo(client, id, Deno.stdout, Deno.stdout.isTerminal() ? undefined : `get ${id}`);
  } catch (error) {
    // A reader that stopped early, as `| head` does, is not a failure.
    if (error instanceof Deno.errors.BrokenPipe) return 0;
    throw error;
  }
  return 0;
}
