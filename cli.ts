/**
 * The Packice command line: `packice serve` runs the daemon; `put`, `get`,
 * `cat`, `ls`, `stat`, `rm`, `status`, `members` and `fetch` talk to it.
 *
 * @example Start the daemon on its default socket, then use it
 * ```sh
 * deno run -A jsr:@packice/packice/cli serve --capacity 8GiB
 * packice put model.bin --id model.bin
 * packice get model.bin -o /tmp/model.bin
 * ```
 *
 * @module
 */
import denoJson from "./deno.json" with { type: "json" };
import { HelpRequest, report, UsageError } from "./cli/command.ts";
import { serve } from "./cli/serve.ts";
import { EXIT_USAGE, exitCodeHelp } from "./cli/exit_codes.ts";
import { cat, CAT_USAGE, get, GET_USAGE } from "./cli/get.ts";
import { FETCH_USAGE, fetchUrl } from "./cli/fetch.ts";
import { ls, LS_USAGE } from "./cli/ls.ts";
import { members, MEMBERS_USAGE } from "./cli/members.ts";
import { put, PUT_USAGE } from "./cli/put.ts";
import { rm, RM_USAGE } from "./cli/rm.ts";
import { stat, STAT_USAGE } from "./cli/stat.ts";
import { status, STATUS_USAGE } from "./cli/status.ts";

const USAGE = `Packice ${denoJson.version}: a peer-to-peer cache of immutable objects

Usage: packice <command> [options]

Commands:
  serve                 run the daemon (see packice serve --help)
  put FILE|-            store a file or standard input; prints the id
  get ID [-o FILE|-]    write an object to a file or standard output
  cat ID                write an object to standard output
  ls [--long] [--json]  list objects
  stat ID [--json]      show an object
  rm ID...              delete objects
  status [--json]       show the daemon: capacity, use, clients, version
  members [--json]      list the daemon's cluster: node, state, address
  fetch URL [-o FILE]   what URL serves, through the daemon's cache
  version               print the version

An ID of get, cat, stat or rm may be an http(s) URL: the object that
packice fetch URL cached it in.

Commands that talk to a daemon find it by --target, else PACKICE_TARGET, else
the daemon's default socket ($XDG_RUNTIME_DIR/packice.sock, or
/tmp/packice-$USER.sock); an http(s) target takes --token, else PACKICE_TOKEN,
else the token file PACKICE_TOKEN_FILE names or the local daemon wrote.
Transfers that take more than a second show a progress bar on a terminal.

Exit codes:
${exitCodeHelp()}
`;

const COMMANDS: Record<string, { run: (args: string[]) => Promise<number>; usage: string }> = {
  put: { run: put, usage: PUT_USAGE },
  get: { run: get, usage: GET_USAGE },
  cat: { run: cat, usage: CAT_USAGE },
  ls: { run: ls, usage: LS_USAGE },
  stat: { run: stat, usage: STAT_USAGE },
  rm: { run: rm, usage: RM_USAGE },
  status: { run: status, usage: STATUS_USAGE },
  members: { run: members, usage: MEMBERS_USAGE },
  fetch: { run: fetchUrl, usage: FETCH_USAGE },
};

/**
 * Runs the command line.
 *
 * @param args The arguments after the program name.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case "serve":
      return await serve(rest);
    case "version":
    case "--version":
      console.log(denoJson.version);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
  }
  const entry = COMMANDS[command];
  if (entry === undefined) {
    console.error(`packice: unknown command: ${command}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  try {
    return await entry.run(rest);
  } catch (error) {
    if (error instanceof HelpRequest) {
      console.log(entry.usage);
      return 0;
    }
    return report(error, error instanceof UsageError ? entry.usage : undefined);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
