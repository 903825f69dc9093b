import type { LogLevel } from "./options.ts";

const ranks: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** A leveled logger writing one line per event to stderr. */
export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

/** A logger that prints events at `level` and above, with a timestamp. */
export function createLogger(level: LogLevel): Logger {
  const encoder = new TextEncoder();
  const at = (event: LogLevel) => (message: string) => {
    if (ranks[event] > ranks[level]) return;
    Deno.stderr.writeSync(
      encoder.encode(`${new Date().toISOString()} ${event.toUpperCase()} ${message}\n`),
    );
  };
  return { error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
}
