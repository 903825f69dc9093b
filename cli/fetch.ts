import { writeWhole } from "../integrations/file_io.ts";
import { CliError, open, parse, positionals, TARGET_FLAGS, TARGET_USAGE } from "./command.ts";
import { getTo, type Sink, writeAll } from "./transfer.ts";

/** The usage text of `packice fetch`. */
export const FETCH_USAGE = `Usage: packice fetch URL [-o FILE|-] [-H 'Name: value' …] [--reload]

Writes what URL serves to FILE (default: standard output), read through the
daemon (client.fetch()): a response any daemon of its cluster holds is
answered from the cluster while fresh, and revalidated with the origin where
the origin gave an ETag or Last-Modified; anything else is downloaded from the
origin once per cluster, by one daemon, while the others pull its pieces.
Headers given with -H, such as Authorization, go to the origin and are never
stored.

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
  const response = await client.fetch(url!, {
    headers,
    ...(values.reload ? { cache: "reload" } : {}),
  });
  if (!response.ok) {
    await response.body?.cancel();
    throw new CliError(`${url} answered ${response.status} ${response.statusText}`, 1);
  }
  const output = values.output ?? "-";
  // From a local daemon the bytes go from the object's mapping to the file, as `get` does.
  const id = response.headers.get("packice-object");
  const mapped = id !== null && !("fetchThrough" in client.peer);
  if (mapped) await response.body?.cancel();
  const write = async (sink: Sink, label: string | undefined) => {
    if (mapped) await getTo(client, id!, sink, label);
    else {
      for await (const chunk of response.body ?? []) await writeAll(sink, chunk);
    }
  };
  if (output === "-") {
    await write(Deno.stdout, undefined);
    return 0;
  }
  await writeWhole(output, (file) => write(file, `fetch ${url}`), 0o644);
  return 0;
}
