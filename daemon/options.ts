import { parseArgs } from "node:util";
import { InvalidArgumentError } from "../core/errors.ts";
import { defaultSocketPath } from "../transport/uds/default_socket.ts";
import { parseSize } from "./size.ts";

/** How verbose the daemon is. */
export type LogLevel = "error" | "warn" | "info" | "debug";

/** Everything `packice serve` can be told. */
export interface DaemonOptions {
  /** Unix socket path; undefined picks the default path. */
  readonly socket: string;
  /** Mode of the socket file. */
  readonly socketMode: number;
  /** Which peer: memory, file system, or memory over disk. */
  readonly impl: "mem" | "fs" | "tiered";
  /** Capacity in bytes of a mem or fs peer. */
  readonly capacity: number;
  /** Data directory of fs and tiered peers. */
  readonly dataDir: string | undefined;
  /** Hot tier budget of a tiered peer. */
  readonly hot: number;
  /** Cold tier budget of a tiered peer. */
  readonly cold: number;
  /** What a full tiered peer does: refuse writes, or drop the coldest objects. */
  readonly mode: "store" | "cache";
  /** `host:port` to serve HTTP on, if any. */
  readonly http: string | undefined;
  /**
   * `host:port` of the native GET listener (sendfile of sealed objects, and
   * the pieces other members ask for); `off` for none; undefined for the
   * default: on the `--http` host at a free port, where it can run.
   */
  readonly httpFast: string | undefined;
  /** Bearer token of the HTTP server; undefined makes a random one, kept in `<socket>.token`. */
  readonly token: string | undefined;
  /** Where the token came from, for the startup line. */
  readonly tokenFrom: "--token" | "--token-file" | "PACKICE_TOKEN" | undefined;
  /** The file of `--token-file`, whose mode the daemon checks at start. */
  readonly tokenFile?: string | undefined;
  /** Redis URL of a shared lease store and directory, if any. */
  readonly redis: string | undefined;
  /** Key prefix in Redis. */
  readonly namespace: string;
  /** This daemon's node id in a shared namespace and in the cluster. */
  readonly node: string | undefined;
  /** Members to join the cluster through, as `host:port` or base URLs. */
  readonly join: readonly string[];
  /** The base URL other members reach this daemon at; default the bound HTTP address. */
  readonly advertise: string | undefined;
  /** Gossip timing: memberlist's LAN defaults, or five times faster for tests. */
  readonly gossipProfile: "lan" | "test";
  /** Log verbosity. */
  readonly logLevel: LogLevel;
  /** Bytes a second of object bodies this daemon's HTTP server sends, if limited. */
  readonly maxUploadRate: number | undefined;
  /** Bytes a second this daemon's cluster transfers receive, if limited. */
  readonly maxDownloadRate: number | undefined;
  /** Object bodies the HTTP server sends at once, if limited (more wait in line). */
  readonly maxUploads: number | undefined;
  /** Bytes of objects this daemon's cluster fetches hold at once, if bounded. */
  readonly transferBudget: number | undefined;
}

/** The usage text of `packice serve`. */
export const SERVE_USAGE = `Usage: packice serve [options]

  --socket PATH        Unix socket to serve on (default: $XDG_RUNTIME_DIR/packice.sock,
                       else /tmp/packice-$USER.sock)
  --socket-mode MODE   octal mode of the socket file (default 600)
  --impl mem|fs|tiered where objects live (default mem)
  --capacity SIZE      bytes a mem or fs peer holds, e.g. 8GiB (default 4GiB)
  --data-dir DIR       data directory of fs and tiered peers
  --hot SIZE           hot (memory) budget of a tiered peer (default 1GiB)
  --cold SIZE          cold (disk) budget of a tiered peer (default 16GiB)
  --mode cache|store   a full peer drops its least recently read objects, or refuses writes (default cache)
  --http HOST:PORT     also serve HTTP; on loopback without a token, a random one is
                       made and written to <socket>.token (mode 600), where clients
                       of this user find it; other addresses need a token
  --http-fast HOST:PORT|off  the native GET listener: sends the pieces other members ask
                       for, and answers GET and HEAD of sealed objects, from the native
                       library off the JS thread (needs --http and --impl mem); every other
                       request is handed to the --http server. Its port is announced with
                       this daemon's holdings; members ask for pieces there, on the host of
                       this daemon's address, and at that address when they cannot reach
                       it. Default: on the --http host at a free port, with --impl mem and
                       the native library, without --advertise; off: pieces go out through
                       the --http server
  --token-file FILE    read the bearer token of the HTTP server from FILE (first line)
  --token TOKEN        the bearer token itself; prefer PACKICE_TOKEN or --token-file,
                       as other users can read the command line
  --redis URL          keep leases and the object directory in Redis (redis://, rediss://,
                       or redis+cluster://host:port,host:port for a Redis Cluster)
  --namespace NAME     key prefix in Redis (default packice)
  --node ID            this daemon's id in a shared namespace and the cluster (default: host and pid)
  --join HOST:PORT,... join the cluster through any of these members (needs --http)
  --advertise URL      the address other members use (default: the bound HTTP address)
  --gossip-profile P   lan (memberlist's LAN timing, default) or test (five times faster)
  --log-level LEVEL    error, warn, info or debug (default info)
  --max-upload-rate RATE    bytes a second of object bodies served over HTTP, e.g. 200MB
  --max-download-rate RATE  bytes a second fetched from other daemons and origins, e.g. 200MB
  --max-uploads N      object bodies served over HTTP at once; more clients wait in line,
                       more daemons get 503 (and a range sent to a daemon is not sent
                       again until 400 ms after: receivers of a broadcast relay it)
  --transfer-budget SIZE  bytes of objects on their way from daemons or origins at once; more wait
                       up to 30 s, then fail with CAPACITY_EXCEEDED
`;

/**
 * Parses the arguments of `packice serve`.
 *
 * @throws {InvalidArgumentError} For an unknown flag or a bad value.
 */
export function parseServeArgs(args: string[]): DaemonOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(args),
      strict: true,
      allowPositionals: false,
      options: {
        socket: { type: "string" },
        "socket-mode": { type: "string", default: "600" },
        impl: { type: "string", default: "mem" },
        capacity: { type: "string", default: "4GiB" },
        "data-dir": { type: "string" },
        hot: { type: "string", default: "1GiB" },
        cold: { type: "string", default: "16GiB" },
        mode: { type: "string", default: "cache" },
        http: { type: "string" },
        "http-fast": { type: "string" },
        token: { type: "string" },
        "token-file": { type: "string" },
        redis: { type: "string" },
        namespace: { type: "string", default: "packice" },
        node: { type: "string" },
        join: { type: "string", multiple: true },
        advertise: { type: "string" },
        "gossip-profile": { type: "string", default: "lan" },
        "log-level": { type: "string", default: "info" },
        "max-upload-rate": { type: "string" },
        "max-download-rate": { type: "string" },
        "max-uploads": { type: "string" },
        "transfer-budget": { type: "string" },
      },
    }));
  } catch (error) {
    throw new InvalidArgumentError(`Invalid arguments: ${(error as Error).message}`);
  }
  const impl = oneOf(values.impl, ["mem", "fs", "tiered"] as const, "--impl");
  if (impl !== "mem" && values["data-dir"] === undefined) {
    throw new InvalidArgumentError(`Invalid arguments: --impl ${impl} needs --data-dir`);
  }
  const join = (values.join ?? []).flatMap((list) => list.split(",")).map((s) => s.trim())
    .filter((s) => s.length > 0);
  if ((join.length > 0 || values.advertise !== undefined) && values.http === undefined) {
    throw new InvalidArgumentError("Invalid arguments: --join and --advertise need --http");
  }
  if (values["http-fast"] !== undefined && values["http-fast"] !== "off") {
    if (values.http === undefined || impl !== "mem") {
      throw new InvalidArgumentError("Invalid arguments: --http-fast needs --http and --impl mem");
    }
  }
  if (impl === "mem" && values["data-dir"] !== undefined) {
    throw new InvalidArgumentError(
      "Invalid arguments: --data-dir is for --impl fs or tiered; a mem peer keeps nothing on disk",
    );
  }
  const token = tokenOf(values.token, values["token-file"]);
  const member = values.redis !== undefined || join.length > 0;
  if (member && values.http !== undefined && token.token === undefined) {
    // A token made at start would be this daemon's alone, and its members could not fetch.
    throw new InvalidArgumentError(
      "Invalid arguments: with --http and --redis or --join the daemon is a member of a cluster, whose members share a bearer token: set PACKICE_TOKEN or --token-file",
    );
  }
  // Whole: parseInt would read "6x" as 6, a socket no one may use.
  const socketMode = /^0?[0-7]{1,3}$/.test(values["socket-mode"])
    ? Number.parseInt(values["socket-mode"], 8)
    : NaN;
  if (Number.isNaN(socketMode)) {
    throw new InvalidArgumentError(
      `Invalid --socket-mode: ${values["socket-mode"]} (an octal mode, such as 600 or 660)`,
    );
  }
  return {
    socket: values.socket ?? defaultSocketPath(),
    socketMode,
    impl,
    capacity: sizeFlag(values.capacity, "--capacity", 1),
    dataDir: values["data-dir"],
    hot: sizeFlag(values.hot, "--hot", 0),
    cold: sizeFlag(values.cold, "--cold", 0),
    mode: oneOf(values.mode, ["store", "cache"] as const, "--mode"),
    http: values.http,
    httpFast: values["http-fast"],
    ...token,
    redis: values.redis,
    namespace: values.namespace,
    node: values.node,
    join,
    advertise: values.advertise,
    gossipProfile: oneOf(values["gossip-profile"], ["lan", "test"] as const, "--gossip-profile"),
    logLevel: oneOf(
      values["log-level"],
      ["error", "warn", "info", "debug"] as const,
      "--log-level",
    ),
    maxUploadRate: positiveSize(values["max-upload-rate"], "--max-upload-rate"),
    maxDownloadRate: positiveSize(values["max-download-rate"], "--max-download-rate"),
    maxUploads: count(values["max-uploads"], "--max-uploads"),
    transferBudget: positiveSize(values["transfer-budget"], "--transfer-budget"),
  };
}

/** A size more than 0, such as `200MB` (a rate in bytes a second, a budget in bytes). */
function positiveSize(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  let bytes;
  try {
    bytes = parseSize(text);
  } catch (error) {
    throw new InvalidArgumentError(`Invalid ${flag}: ${(error as Error).message}`);
  }
  if (bytes === 0) throw new InvalidArgumentError(`Invalid ${flag}: ${text} (more than 0)`);
  return bytes;
}

/** A whole number, 1 or more. */
function count(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new InvalidArgumentError(`Invalid ${flag}: ${text} (a whole number, 1 or more)`);
  }
  return Number(text);
}

/** Options that take a value, whose value may start with a dash (`--capacity -1`). */
const VALUE_FLAGS = new Set(["--capacity", "--hot", "--cold", "--socket-mode"]);

/**
 * Joins `--capacity -1` into `--capacity=-1`, which parseArgs would call an
 * ambiguous argument, so that the size parser can say what is wrong with it.
 */
function joinNegativeValues(args: readonly string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (VALUE_FLAGS.has(arg) && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

function sizeFlag(text: string, flag: string, least: number): number {
  if (/^\s*-/.test(text)) {
    throw new InvalidArgumentError(`Invalid ${flag}: ${text}: a size cannot be negative`);
  }
  let bytes: number;
  try {
    bytes = parseSize(text);
  } catch (error) {
    throw new InvalidArgumentError(`Invalid ${flag}: ${(error as Error).message}`);
  }
  if (bytes < least) {
    throw new InvalidArgumentError(
      `Invalid ${flag}: ${text}: must be at least ${least} byte (try 512MiB or 8GiB)`,
    );
  }
  return bytes;
}

/** The token of `--token`, `--token-file` or `PACKICE_TOKEN`, at most one of the flags. */
function tokenOf(
  flag: string | undefined,
  file: string | undefined,
): Pick<DaemonOptions, "token" | "tokenFrom" | "tokenFile"> {
  if (flag !== undefined && file !== undefined) {
    throw new InvalidArgumentError(
      "Invalid arguments: --token and --token-file exclude each other",
    );
  }
  if (flag !== undefined) return { token: checkToken(flag, "--token"), tokenFrom: "--token" };
  if (file !== undefined) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (error) {
      throw new InvalidArgumentError(`Invalid --token-file: ${file}: ${(error as Error).message}`);
    }
    const token = text.split("\n")[0]!.trim();
    return {
      token: checkToken(token, `--token-file ${file}`),
      tokenFrom: "--token-file",
      tokenFile: file,
    };
  }
  const env = Deno.env.get("PACKICE_TOKEN");
  return env
    ? { token: checkToken(env, "PACKICE_TOKEN"), tokenFrom: "PACKICE_TOKEN" }
    : { token: undefined, tokenFrom: undefined };
}

/**
 * A token goes into an `Authorization` header: printable ASCII, no space at
 * either end, so a token file read whole fails here, not at each request.
 */
function checkToken(token: string, from: string): string {
  if (token.length === 0) throw new InvalidArgumentError(`Invalid ${from}: the token is empty`);
  if (!/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(token)) {
    throw new InvalidArgumentError(
      `Invalid ${from}: the token holds line breaks, tabs, spaces at its ends or non-ASCII characters; use the first line of a token file (--token-file reads just that)`,
    );
  }
  return token;
}

function oneOf<T extends string>(value: string, choices: readonly T[], flag: string): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`Invalid ${flag}: ${value} (one of ${choices.join(", ")})`);
  }
  return value as T;
}
