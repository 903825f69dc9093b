import { fstatSync } from "node:fs";
import type { PutOptions } from "../client/mod.ts";
import type { Meta } from "../core/validate.ts";
import { open, parse, positionals, TARGET_FLAGS, TARGET_USAGE, UsageError } from "./command.ts";
import { putSized, putStream } from "./transfer.ts";

/** The usage text of `packice put`. */
export const PUT_USAGE = `Usage: packice put FILE|- [options]

Stores a file, or standard input with -, as a new sealed object and prints its id.

  --id ID          the object's id (default: a new random one)
  --meta KEY=VALUE metadata, repeatable: --meta content-type=text/plain --meta owner=ci
  --ttl D          time to live: 500ms, 30s, 10m, 2h, 1d, or milliseconds
${TARGET_USAGE}`;

/** `packice put`. */
export async function put(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, {
    ...TARGET_FLAGS,
    id: { type: "string" },
    meta: { type: "string", multiple: true },
    ttl: { type: "string" },
  });
  const [path] = positionals(rest, ["FILE (or - for standard input)"]);
  const options: PutOptions = {
    ...(values.id === undefined ? {} : { id: values.id }),
    ...(values.meta === undefined ? {} : { meta: parseMeta(values.meta) }),
    ...(values.ttl === undefined ? {} : { ttl: parseDuration(values.ttl, "--ttl") }),
  };
  const fromStdin = path === "-";
  // Standard input redirected from a file has a size, and goes in as a file does.
  const { isFile, size } = fromStdin ? stdinInfo() : await Deno.stat(path!);
  if (!fromStdin && !isFile) throw new UsageError(`not a regular file: ${path}`);
  await using client = await open(values);
  let id: string;
  if (fromStdin) {
    id = isFile
      ? await putSized(client, Deno.stdin, size, options, "put -")
      : await putStream(client, Deno.stdin.readable, options, "put -");
  } else {
    using file = await Deno.open(path!);
    id = await putSized(client, file, size, options, `put ${path}`);
  }
  console.log(id);
  return 0;
}

/** Whether standard input is a file, and its size; `/dev/stdin` would need every permission. */
function stdinInfo(): { isFile: boolean; size: number } {
  const info = fstatSync(0);
  return { isFile: info.isFile(), size: info.size };
}

/** `KEY=VALUE` pairs as metadata of strings. */
export function parseMeta(pairs: readonly string[]): Meta {
  const meta: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new UsageError(`invalid --meta ${pair}: expected KEY=VALUE`);
    meta[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return meta;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as `30s`, `10m` or `1500` (milliseconds), in milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  const ms = match ? Math.round(Number(match[1]) * UNITS[match[2] ?? "ms"]!) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new UsageError(`invalid ${flag} ${text}: expected a duration such as 30s, 10m, 2h`);
  }
  return ms;
}
