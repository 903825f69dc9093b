import { writeWhole } from "../integrations/file_io.ts";
import { open, parse, positionals, TARGET_FLAGS, TARGET_USAGE } from "./command.ts";
import { getTo } from "./transfer.ts";

/** The usage text of `packice get`. */
export const GET_USAGE = `Usage: packice get ID [-o FILE|-]

Writes an object to FILE (default: a file named ID in this directory), or to
standard output with -o -. A failed get leaves no partial file.

  -o, --output FILE  where to write
${TARGET_USAGE}`;

/** The usage text of `packice cat`. */
export const CAT_USAGE = `Usage: packice cat ID

Writes an object to standard output.

${TARGET_USAGE}`;

/** `packice get`. */
export async function get(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, {
    ...TARGET_FLAGS,
    output: { type: "string", short: "o" },
  });
  const [id] = positionals(rest, ["ID"]);
  const output = values.output ?? id!;
  await using client = await open(values);
  if (output === "-") return await toStdout(client, id!);
  await writeWhole(output, async (file) => {
    await getTo(client, id!, file, `get ${id}`);
  }, 0o644);
  return 0;
}

/** `packice cat`. */
export async function cat(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, TARGET_FLAGS);
  const [id] = positionals(rest, ["ID"]);
  await using client = await open(values);
  return await toStdout(client, id!);
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
