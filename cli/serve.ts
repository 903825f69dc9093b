import { PackiceError } from "../core/errors.ts";
import { startDaemon } from "../daemon/daemon.ts";
import { createLogger } from "../daemon/log.ts";
import { parseServeArgs, SERVE_USAGE } from "../daemon/options.ts";
import { EXIT_USAGE } from "./exit_codes.ts";

/** `packice serve`: runs the daemon until SIGINT, SIGTERM or SIGHUP. */
export async function serve(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(SERVE_USAGE);
    return 0;
  }
  let options;
  try {
    options = parseServeArgs(args);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${SERVE_USAGE}`);
    return EXIT_USAGE;
  }
  const log = createLogger(options.logLevel);
  // Listened for from the start: a signal that came while the daemon started (or just after
  // its listening line, before a listener) would end it with no cleanup, as would SIGHUP
  // (its terminal closed) at any time, leaving its socket and token file behind.
  const stopped = Promise.withResolvers<string>();
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  const handlers = signals.map((signal) => {
    const handler = () => stopped.resolve(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  try {
    let daemon;
    try {
      // A start can wait long (for Redis, say): a signal then ends it at once.
      daemon = await Promise.race([startDaemon(options, log), stopped.promise]);
    } catch (error) {
      log.error(error instanceof PackiceError ? `${error.code}: ${error.message}` : String(error));
      return 1;
    }
    if (typeof daemon === "string") {
      log.info(`${daemon} while starting: stopped before serving`);
      return 1;
    }
    for (const address of daemon.addresses) console.log(`Packice listening on ${address}`);
    const signal = await stopped.promise;
    log.info(`${signal}: shutting down`);
    await daemon.close();
    return 0;
  } finally {
    for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
  }
}
