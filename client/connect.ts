import { InvalidArgumentError } from "../core/errors.ts";
import type { Peer } from "../core/peer.ts";
import { MemoryPeer, type MemoryPeerOptions } from "../peers/memory_peer.ts";
import { openSharedPeer } from "../transport/direct.ts";
import { connectUnix, unixSocketPath } from "../transport/uds/connect.ts";
import { HttpPeer } from "../transport/http/http_peer.ts";
import { Client } from "./client.ts";

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Capacity in bytes of a peer that `connect` makes (`connect()` and `memory://`). */
  readonly capacity?: number;
  /** Bearer token for `http://` peers. */
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
 * - `connect("memory://name")`: an in-memory peer shared by every client of this process using the name.
 * - `connect(peer)`: a peer instance; the client does not close it.
 * - `connect("/path.sock")` or `connect("unix:///path.sock")`: a daemon on a Unix socket.
 * - `connect("http://host:port", { token })`: a peer over HTTP.
 *
 * @example A private in-memory peer
 * ```ts
 * import { connect } from "@packice/packice";
 * await using client = await connect();
 * const id = await client.put(new Uint8Array(1024));
 * console.log(await client.has(id)); // true
 * ```
 */
export async function connect(
  target?: string | Peer,
  options: ConnectOptions = {},
): Promise<Client> {
  const peerOptions: MemoryPeerOptions = options.capacity === undefined
    ? {}
    : { capacity: options.capacity };
  if (target === undefined) {
    const peer = new MemoryPeer(peerOptions);
    return new Client(peer, () => peer.close());
  }
  if (typeof target !== "string") return new Client(target);
  if (target.startsWith("memory://")) {
    const name = target.slice("memory://".length);
    if (name.length === 0) throw new InvalidArgumentError("Invalid target: memory:// needs a name");
    const { peer, done } = openSharedPeer(name, () => new MemoryPeer(peerOptions));
    return new Client(peer, done);
  }
  return await connectRemote(target, options);
}

async function connectRemote(target: string, options: ConnectOptions): Promise<Client> {
  if (target.startsWith("http://") || target.startsWith("https://")) {
    const token = options.token === undefined ? {} : { token: options.token };
    const peer = await HttpPeer.connect(target, token);
    return new Client(peer, () => peer.close());
  }
  const socket = unixSocketPath(target);
  if (socket !== undefined) {
    return connectUnix(socket, {
      ...(options.writeAheadBytes === undefined
        ? {}
        : { writeAheadBytes: options.writeAheadBytes }),
      ...(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout }),
    });
  }
  return Promise.reject(new InvalidArgumentError(`Unsupported target: ${target}`));
}
