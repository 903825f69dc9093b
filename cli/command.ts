import { parseArgs, type ParseArgsConfig } from "node:util";
import {
  ErrorCode,
  PackiceError,
  StoreUnavailableError,
  UnauthorizedError,
  UnsupportedError,
} from "../core/errors.ts";
import type { DaemonStatus, StatusSource } from "../core/status.ts";
import { type Client, connect, localTarget } from "../client/mod.ts";
import { originId } from "../p2p/origin/origin_id.ts";
import { EXIT_CODES, EXIT_FILE, EXIT_USAGE } from "./exit_codes.ts";

/** Wrong use of the command line: exits with {@link EXIT_USAGE} after the usage text. */
export class UsageError extends Error {}

/** `--help` was given: the usage text goes to standard output, and the command exits 0. */
export class HelpRequest extends Error {}

/** A failure with a message for people and an exit code of its own. */
export class CliError extends Error {
  /** The process's exit code. */
  readonly exitCode: number;

  /**
   * @param message What to tell the user, and what to do about it.
   * @param exitCode The exit code.
   */
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** Flags every command that talks to a daemon takes. */
export const TARGET_FLAGS = {
  target: { type: "string", short: "t" },
  token: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

/** {@link TARGET_FLAGS} and `--json`, for the commands that show something. */
export const SHOW_FLAGS = {
  ...TARGET_FLAGS,
  json: { type: "boolean" },
} as const satisfies ParseArgsConfig["options"];

/** The usage lines of {@link TARGET_FLAGS}. */
export const TARGET_USAGE =
  `  -t, --target T   the daemon: a socket path, unix:///path or http(s)://host:port
                   (default: $PACKICE_TARGET, else the daemon's default socket)
  --token TOKEN    bearer token for http(s) targets (default: $PACKICE_TOKEN, the file
                   $PACKICE_TOKEN_FILE names, or the local daemon's <socket>.token)`;

/**
 * Parses a command's arguments, turning parseArgs' errors into
 * {@link UsageError}, and `--help` into {@link HelpRequest}: the caller
 * that holds the command's usage text answers both.
 */
export function parse<T extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: T,
) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if ((parsed.values as { help?: unknown }).help === true) throw new HelpRequest();
  return parsed;
}

/**
 * The target a command talks to: `--target`, else `PACKICE_TARGET`, else the
 * default socket. A bare relative path (`packice.sock`) names a socket too.
 */
export function targetOf(flag: string | undefined): string {
  const target = flag === undefined || flag === "local" ? localTarget() : flag;
  return target.includes("://") || target.startsWith("/") || target.startsWith(".")
    ? target
    : `./${target}`;
}

/**
 * Connects to the daemon a command names, with an error that says what to do
 * when none answers.
 */
export async function open(values: { target?: string; token?: string }): Promise<Client> {
  const target = targetOf(values.target);
  try {
    return await connect(target, values.token === undefined ? {} : { token: values.token });
  } catch (error) {
    if (error instanceof StoreUnavailableError) {
      const where = target.replace(/^unix:\/\//, "");
      throw new CliError(
        `no daemon at ${where} — start one with \`packice serve\` or set PACKICE_TARGET`,
        EXIT_CODES.STORE_UNAVAILABLE,
      );
    }
    if (error instanceof UnauthorizedError) {
      throw new CliError(
        // The server's words, without the library's advice to pass a token to connect().
        `${target} refused the token: ${
          error.cause instanceof Error ? error.cause.message : error.message
        }: pass --token, or set PACKICE_TOKEN or PACKICE_TOKEN_FILE (a daemon that made its token keeps it in <socket>.token)`,
        EXIT_CODES.UNAUTHORIZED,
      );
    }
    throw error;
  }
}

/**
 * The status of the daemon a command talks to, for the commands that
 * describe it.
 *
 * @param what What the command shows, for the message: "status", "members".
 * @throws {UnsupportedError} When the target is a peer but not a daemon.
 */
export async function daemonStatus(
  client: Client,
  target: string | undefined,
  what: string,
): Promise<DaemonStatus> {
  const peer = client.peer as Partial<StatusSource>;
  if (typeof peer.status !== "function") {
    throw new UnsupportedError(`No ${what}: ${targetOf(target)} is not a daemon`);
  }
  return await peer.status();
}

/**
 * Reports a failure on stderr and gives its exit code: a Packice error by its
 * code, a local file by {@link EXIT_FILE}.
 */
export function report(error: unknown, usage?: string): number {
  if (error instanceof UsageError) {
    console.error(`packice: ${error.message}${usage === undefined ? "" : `\n\n${usage}`}`);
    return EXIT_USAGE;
  }
  if (error instanceof CliError) {
    console.error(`packice: ${error.message}`);
    return error.exitCode;
  }
  if (error instanceof PackiceError) {
    console.error(`packice: ${error.code}: ${error.message}`);
    return EXIT_CODES[error.code] ?? EXIT_CODES[ErrorCode.INTERNAL];
  }
  if (error instanceof Deno.errors.NotCapable) {
    console.error(`packice: ${error.message}`);
    return EXIT_CODES.UNAUTHORIZED;
  }
  if (error instanceof Error && isFileError(error)) {
    console.error(`packice: ${error.message}`);
    return EXIT_FILE;
  }
  console.error(`packice: ${error instanceof Error ? error.stack ?? error.message : error}`);
  return EXIT_CODES.INTERNAL;
}

function isFileError(error: Error): boolean {
  return error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied ||
    error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.IsADirectory ||
    error instanceof Deno.errors.NotADirectory || error instanceof Deno.errors.FilesystemLoop;
}

/**
 * The object an argument names: an id as it is, or an http(s) URL for the
 * object `packice fetch URL` cached it in (no id holds "://").
 */
export function objectId(argument: string): string {
  return /^https?:\/\//i.test(argument) ? originId(argument) : argument;
}

/** Exactly `count` positional arguments, or a {@link UsageError} naming them. */
export function positionals(list: string[], names: string[]): string[] {
  if (list.length < names.length) throw new UsageError(`missing ${names[list.length]}`);
  if (list.length > names.length) {
    throw new UsageError(`unexpected argument: ${list[names.length]}`);
  }
  return list;
}
