/**
 * The Packice daemon and tools: `packice serve` runs a peer behind its
 * transports; `packice version` prints the version.
 *
 * @example Start the daemon on its default socket
 * ```sh
 * deno run -A jsr:@packice/packice/cli serve --capacity 8GiB
 * ```
 *
 * @module
 */
import denoJson from "./deno.json" with { type: "json" };
import { PackiceError } from "./core/errors.ts";
import { startDaemon } from "./daemon/daemon.ts";
import { createLogger } from "./daemon/log.ts";
import { parseServeArgs, SERVE_USAGE } from "./daemon/options.ts";

const USAGE = `Packice ${denoJson.version}: a peer-to-peer cache of immutable objects

Usage: packice <command> [options]

Commands:
  serve     run the daemon (see packice serve --help)
  version   print the version
`;

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
      if (rest.includes("--help") || rest.includes("-h")) {
        console.log(SERVE_USAGE);
        return 0;
      }
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
    default:
      console.error(`Unknown command: ${command}\n\n${USAGE}`);
      return 2;
  }
}

async function serve(args: string[]): Promise<number> {
  let options;
  try {
    options = parseServeArgs(args);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${SERVE_USAGE}`);
    return 2;
  }
  const log = createLogger(options.logLevel);
  let daemon;
  try {
    daemon = await startDaemon(options, log);
  } catch (error) {
    log.error(error instanceof PackiceError ? `${error.code}: ${error.message}` : String(error));
    return 1;
  }
  for (const address of daemon.addresses) console.log(`Packice listening on ${address}`);
  const stopped = Promise.withResolvers<string>();
  const signals = ["SIGINT", "SIGTERM"] as const;
  const handlers = signals.map((signal) => {
    const handler = () => stopped.resolve(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  const signal = await stopped.promise;
  for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
  log.info(`${signal}: shutting down`);
  await daemon.close();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
