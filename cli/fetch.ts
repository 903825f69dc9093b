import { createCachedFetch } from "../integrations/cached_fetch.ts";
import { PackiceCacheStorage } from "../integrations/cache_storage.ts";
import { writeWhole } from "../integrations/file_io.ts";
import { CliError, open, parse, positionals, TARGET_FLAGS, TARGET_USAGE } from "./command.ts";

/** The usage text of `packice fetch`. */
export const FETCH_USAGE = `Usage: packice fetch URL [-o FILE|-] [-H 'Name: value' …] [--reload]

Writes what URL serves to FILE (default: standard output), through the
daemon's cache: a response it holds is answered from it, revalidated with the
origin where the origin gave an ETag or Last-Modified; anything else is
downloaded once and kept for the next caller on this host (the same cache as
cachedFetch()). Requests with -H headers such as Authorization pass them to
the origin; they are never stored.

  -o, --output FILE  where to write (- for standard output)
  -H, --header H     a request header, 'Name: value'; repeatable
  --reload           go to the origin even when the daemon holds the response
${TARGET_USAGE}`;

/** `packice fetch`. */
export async function fetchUrl(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, {
    ...TARGET_FLAGS,
    output: { type: "string", short: "o" },
    header: { type: "string", short: "H", multiple: true },
    reload: { type: "boolean" },
  });
  const [url] = positionals(rest, ["URL"]);
  const headers = new Headers();
  for (const header of values.header ?? []) {
    const colon = header.indexOf(":");
    if (colon <= 0) throw new CliError(`Invalid header: ${header}: write it as 'Name: value'`, 2);
    headers.append(header.slice(0, colon).trim(), header.slice(colon + 1).trim());
  }
  await using client = await open(values);
  const fetch = createCachedFetch({ cache: new PackiceCacheStorage(client).open("fetch") });
  const response = await fetch(url!, { headers, ...(values.reload ? { cache: "reload" } : {}) });
  if (!response.ok) {
    await response.body?.cancel();
    throw new CliError(`${url} answered ${response.status} ${response.statusText}`, 1);
  }
  const output = values.output ?? "-";
  if (output === "-") {
    await response.body?.pipeTo(Deno.stdout.writable, { preventClose: true });
    return 0;
  }
  await writeWhole(
    output,
    (file) =>
      (response.body ?? ReadableStream.from([])).pipeTo(file.writable, { preventClose: true }),
    0o644,
  );
  return 0;
}
