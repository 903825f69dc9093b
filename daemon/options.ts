import { parseArgs } from "node:util";
import { InvalidArgumentError } from "../core/errors.ts";
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
  /** Bearer token of the HTTP server. */
  readonly token: string | undefined;
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
  --http HOST:PORT     also serve HTTP (loopback unless a token is set)
  --token TOKEN        bearer token of the HTTP server (or PACKICE_TOKEN)
  --redis URL          keep leases and the object directory in Redis (redis://, rediss://,
                       or redis+cluster://host:port,host:port for a Redis Cluster)
  --namespace NAME     key prefix in Redis (default packice)
  --node ID            this daemon's id in a shared namespace and the cluster (default: host and pid)
  --join HOST:PORT,... join the cluster through any of these members (needs --http)
  --advertise URL      the address other members use (default: the bound HTTP address)
  --gossip-profile P   lan (memberlist's LAN timing, default) or test (five times faster)
  --log-level LEVEL    error, warn, info or debug (default info)
  --max-upload-rate RATE    bytes a second of object bodies served over HTTP, e.g. 200MB
  --max-download-rate RATE  bytes a second fetched from other daemons, e.g. 200MB
  --max-uploads N      object bodies served over HTTP at once; more clients wait in line,
                       more daemons get 503 (and a range sent to a daemon is not sent
                       again until 400 ms after: receivers of a broadcast relay it)
  --transfer-budget SIZE  bytes of objects on their way from other daemons at once; more wait
                       up to 30 s, then fail with CAPACITY_EXCEEDED
`;

/** The default socket path: `$XDG_RUNTIME_DIR/packice.sock`, else one under /tmp per user. */
export function defaultSocketPath(): string {
  const runtime = Deno.env.get("XDG_RUNTIME_DIR");
  if (runtime) return `${runtime}/packice.sock`;
  const user = Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? String(Deno.uid() ?? "user");
  return `/tmp/packice-${user}.sock`;
}

/**
 * Parses the arguments of `packice serve`.
 *
 * @throws {InvalidArgumentError} For an unknown flag or a bad value.
 */
export function parseServeArgs(args: string[]): DaemonOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
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
        token: { type: "string" },
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
  const socketMode = Number.parseInt(values["socket-mode"], 8);
  if (!Number.isInteger(socketMode) || socketMode < 0 || socketMode > 0o777) {
    throw new InvalidArgumentError(`Invalid --socket-mode: ${values["socket-mode"]}`);
  }
  return {
    socket: values.socket ?? defaultSocketPath(),
    socketMode,
    impl,
    capacity: parseSize(values.capacity),
    dataDir: values["data-dir"],
    hot: parseSize(values.hot),
    cold: parseSize(values.cold),
    mode: oneOf(values.mode, ["store", "cache"] as const, "--mode"),
    http: values.http,
    token: values.token ?? (Deno.env.get("PACKICE_TOKEN") || undefined),
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
  const bytes = parseSize(text);
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

function oneOf<T extends string>(value: string, choices: readonly T[], flag: string): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`Invalid ${flag}: ${value} (one of ${choices.join(", ")})`);
  }
  return value as T;
}
