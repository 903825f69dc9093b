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
  CONFLICT: 19,
};

/** Bad usage: an unknown command or flag, a missing argument. */
export const EXIT_USAGE = 2;
/** A local file could not be read or written. */
export const EXIT_FILE = 18;

/** What each code means to someone at a shell. */
const MEANINGS: Readonly<Record<ErrorCode, string>> = {
  INTERNAL: "a failure inside the daemon, or any other",
  NOT_FOUND: "no such object",
  ALREADY_EXISTS: "the id is taken",
  NOT_SEALED: "the object is still being written",
  ALREADY_SEALED: "the object is sealed",
  LEASE_EXPIRED: "a lease ended, as when the daemon restarted",
  UNKNOWN_LEASE: "a lease the daemon does not know",
  WRONG_ACCESS: "the lease does not allow it",
  INVALID_ARGUMENT: "a bad id, size, metadata or TTL",
  CAPACITY_EXCEEDED: "the daemon is full",
  NATIVE_UNAVAILABLE: "the native library is missing: no Unix socket",
  STORE_UNAVAILABLE: "no daemon answers at the target (or its Redis is away)",
  UNAUTHORIZED: "a missing or wrong token, or no permission",
  PROTOCOL: "a malformed message from the other side",
  UNSUPPORTED: "the target cannot do it",
  CLOSED: "the connection closed",
  CONFLICT: "two holders of the id have different content",
};

/** The exit code table as `--help` and the README show it. */
export function exitCodeHelp(): string {
  const rows: Array<[number, string]> = [
    [0, "success"],
    [EXIT_USAGE, "usage: unknown command or flag, missing argument"],
    [EXIT_FILE, "a local file could not be read or written"],
    ...Object.entries(EXIT_CODES).map(([code, exit]): [number, string] => [
      exit,
      `${code}: ${MEANINGS[code as ErrorCode]}`,
    ]),
  ];
  rows.sort(([a], [b]) => a - b);
  return rows.map(([exit, what]) => `  ${String(exit).padStart(3)}  ${what}`).join("\n");
}
