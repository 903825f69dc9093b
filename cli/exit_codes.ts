import type { ErrorCode } from "../core/errors.ts";

/** The exit code of each error code, so that scripts can tell failures apart. */
export const EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
  INTERNAL: 1,
  NOT_FOUND: 3,
  ALREADY_EXISTS: 4,
  NOT_SEALED: 5,
  ALREADY_SEALED: 6,
  LEASE_EXPIRED: 7,
  UNKNOWN_LEASE: 8,
  WRONG_ACCESS: 9,
  INVALID_ARGUMENT: 10,
  CAPACITY_EXCEEDED: 11,
  NATIVE_UNAVAILABLE: 12,
  STORE_UNAVAILABLE: 13,
  UNAUTHORIZED: 14,
  PROTOCOL: 15,
  UNSUPPORTED: 16,
  CLOSED: 17,
};

/** Bad usage: an unknown command or flag, a missing argument. */
export const EXIT_USAGE = 2;
/** A local file could not be read or written. */
export const EXIT_FILE = 18;

/** The exit code table as `--help` shows it. */
export function exitCodeHelp(): string {
  const rows: Array<[number, string]> = [
    [0, "success"],
    [EXIT_USAGE, "usage: unknown command or flag, missing argument"],
    [EXIT_FILE, "a local file could not be read or written"],
    ...Object.entries(EXIT_CODES).map(([code, exit]): [number, string] => [
      exit,
      code === "INTERNAL" ? "INTERNAL, or any other failure" : code,
    ]),
  ];
  rows.sort(([a], [b]) => a - b);
  return rows.map(([exit, what]) => `  ${String(exit).padStart(3)}  ${what}`).join("\n");
}
