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
  let daemon;
  try {
    daemon = await startDaemon(options, log);
  } catch (error) {
    log.error(error instanceof PackiceError ? `${error.code}: ${error.message}` : String(error));
    return 1;
  }
  for (const address of daemon.addresses) console.log(`Packice listening on ${address}`);
  const stopped = Promise.withResolvers<string>();
  // SIGHUP too (its terminal closed): by default it would end the daemon with no cleanup,
  // leaving its socket and token file behind.
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
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
