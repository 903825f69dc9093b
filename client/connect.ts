import { InvalidArgumentError, UnauthorizedError } from "../core/errors.ts";
import type { Peer } from "../core/peer.ts";
import { ensureNative } from "../native/load.ts";
import { MemoryPeer, type MemoryPeerOptions } from "../peers/memory_peer.ts";
import { openSharedPeer } from "../transport/direct.ts";
import { unixSocketPath } from "../transport/uds/connect.ts";
import { defaultSocketPath } from "../transport/uds/default_socket.ts";
import { UdsPeer, type UdsPeerOptions } from "../transport/uds/uds_peer.ts";
import { HttpPeer } from "../transport/http/http_peer.ts";
import { readTokenFile, tokenFilePath } from "../transport/http/token_file.ts";
import { Client } from "./client.ts";
import { ReconnectingPeer } from "./reconnecting_peer.ts";

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Capacity in bytes of a peer that `connect` makes (`connect()` and `memory://`). */
  readonly capacity?: number;
  /**
   * Bearer token for `http://` peers. Without it: `PACKICE_TOKEN`, else the
   * first line of the file `PACKICE_TOKEN_FILE` names, else the token the
   * local daemon wrote beside its socket when the URL is one it serves.
   */
  readonly token?: string;
  /** For a daemon on a Unix socket: see `UdsPeerOptions.writeAheadBytes`. */
  readonly writeAheadBytes?: number;
  /** For a daemon on a Unix socket: see `UdsPeerOptions.requestTimeout`. */
  readonly requestTimeout?: number;
}

/**
 * Connects a client to a peer.
 *
 * - `connect()`: a private in-memory peer, closed with the client.
 * - `connect("local")`: the daemon of this user on this host: `PACKICE_TARGET`
 *   when set, else the daemon's default socket (`$XDG_RUNTIME_DIR/packice.sock`,
 *   else `/tmp/packice-$USER.sock`).
 * - `connect("memory://name")`: an in-memory peer shared by every client of this process using the name.
 * - `connect(peer)`: a peer instance; the client does not close it.
 * - `connect("/path.sock")` or `connect("unix:///path.sock")`: a daemon on a Unix socket. A
 *   client whose daemon restarted connects again on its next call; leases
 *   held across the restart end with `LeaseExpiredError`. An open connection
 *   keeps the process running: close the client (`await using` does) for a
 *   script to end.
 * - `connect("http://host:port", { token })`: a peer over HTTP.
 *
 * Zero-copy sharing needs the native library: the first connection builds it
 * if needed, fetching its C source when this module was imported by URL.
 *
 * @throws {StoreUnavailableError} When no daemon listens at the target.
 *
 * @example A private in-memory peer
 * ```ts
 * import { connect } from "@packice/packice";
 * await using client = await connect();
 * const id = await client.put(new Uint8Array(1024));
 * console.log(await client.has(id)); // true
 * ```
 *
 * @example The local daemon
 * ```ts ignore
 * import { connect } from "@packice/packice";
 * await using client = await connect("local");
 * using weights = await client.get("model.bin"); // mapped, not copied
 * ```
 */
export async function connect(
  target?: string | Peer,
  options: ConnectOptions = {},
): Promise<Client> {
  if (typeof target !== "string" && target !== undefined) return new Client(target);
  const inProcess = target === undefined || target.startsWith("memory://");
  // Before any peer is made: loaded by URL, the library needs its source fetched first. A
  // peer in this process works without it, so a permission missing for that is no failure.
  await ensureNative().catch((error) => {
    if (!inProcess || !(error instanceof Deno.errors.NotCapable)) throw error;
  });
  const peerOptions: MemoryPeerOptions = options.capacity === undefined
    ? {}
    : { capacity: options.capacity };
  if (target === undefined) {
    const peer = new MemoryPeer(peerOptions);
    return new Client(peer, () => peer.close());
  }
  if (target.startsWith("memory://")) {
    const name = target.slice("memory://".length);
    if (name.length === 0) throw new InvalidArgumentError("Invalid target: memory:// needs a name");
    const { peer, done } = openSharedPeer(name, () => new MemoryPeer(peerOptions));
    return new Client(peer, done);
  }
  return await connectRemote(target === "local" ? localTarget() : target, options);
}

/**
 * Where `connect("local")` goes: `PACKICE_TARGET`, else the daemon's default socket.
 *
 * @returns A target for {@link connect}.
 *
 * @example
 * ```ts ignore
 * import { localTarget } from "@packice/packice";
 * console.log(localTarget()); // "/run/user/1000/packice.sock"
 * ```
 */
export function localTarget(): string {
  const target = Deno.env.get("PACKICE_TARGET");
  if (target === "local") throw new InvalidArgumentError("Invalid PACKICE_TARGET: local");
  return target || defaultSocketPath();
}

async function connectRemote(target: string, options: ConnectOptions): Promise<Client> {
  if (target.startsWith("http://") || target.startsWith("https://")) {
    const token = options.token ?? await findToken(target);
    let peer: HttpPeer;
    try {
      peer = await HttpPeer.connect(target, token === undefined ? {} : { token });
    } catch (error) {
      if (!(error instanceof UnauthorizedError)) throw error;
      throw new UnauthorizedError(
        `${target} refused the token: ${error.message}: pass connect(url, { token }), or set ` +
          `PACKICE_TOKEN or PACKICE_TOKEN_FILE (a daemon that made its token keeps it in ` +
          `<socket>.token)`,
        { cause: error },
      );
    }
    return new Client(peer, () => peer.close());
  }
  const socket = unixSocketPath(target);
  if (socket === undefined) {
    throw new InvalidArgumentError(
      `Unsupported target: ${target} (try local, /path/to/packice.sock, unix:///path, http://host:port)`,
    );
  }
  const udsOptions: UdsPeerOptions = {
    ...(options.writeAheadBytes === undefined ? {} : { writeAheadBytes: options.writeAheadBytes }),
    ...(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout }),
  };
  const open = () => UdsPeer.connect(socket, udsOptions);
  const peer = new ReconnectingPeer(await open(), open);
  return new Client(peer, () => peer.close());
}

/** The token for an HTTP target the caller gave none for, if one is found. */
async function findToken(target: string): Promise<string | undefined> {
  const env = readEnv("PACKICE_TOKEN");
  if (env !== undefined) return env;
  const named = readEnv("PACKICE_TOKEN_FILE");
  if (named !== undefined) {
    const file = await readTokenFile(named);
    if (file === undefined) {
      throw new InvalidArgumentError(`Invalid PACKICE_TOKEN_FILE: ${named}: empty`);
    }
    return file.token;
  }
  // Only to the very address the local daemon wrote: never to another server on this host.
  let path: string;
  try {
    path = tokenFilePath(defaultSocketPath());
  } catch {
    return undefined;
  }
  const origin = new URL(target).origin;
  const file = await readTokenFile(path, { ownOnly: true }).catch(() => undefined);
  return file?.urls.some((url) => new URL(url).origin === origin) ? file.token : undefined;
}

/** An environment variable where reading it is allowed, without asking. */
function readEnv(name: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined;
  }
  return Deno.env.get(name) || undefined;
}
