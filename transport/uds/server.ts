import {
  AlreadyExistsError,
  asPackiceError,
  InvalidArgumentError,
  NativeUnavailableError,
} from "../../core/errors.ts";
import type { DaemonStatus } from "../../core/status.ts";
import type { OriginReply, OriginRequest } from "../origin_fetch.ts";
import type { Peer } from "../../core/peer.ts";
import { Errno, errnoError } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import { ensureNative, type Native } from "../../native/load.ts";
import { Reactor } from "../../native/reactor.ts";
import { Connection } from "./connection.ts";
import { FastOpens } from "./fast_opens.ts";
import { UdsMetrics } from "./metrics.ts";
import type { Context, UdsServerLog } from "./session.ts";
import { connectSocket } from "./socket.ts";

export type { UdsServerLog } from "./session.ts";

/** Options of {@link UdsServer.listen}. */
export interface UdsServerOptions {
  /** Mode of the socket file. Default `0o600`: only this user may connect. */
  readonly mode?: number;
  /** Bytes of replies that may wait for a client that does not read before it is disconnected. Default 8 MiB. */
  readonly maxQueuedBytes?: number;
  /** Requests of one client handled at once; more wait their turn. Default 256. */
  readonly maxInflight?: number;
  /** Where to report events. Default: nowhere. */
  readonly log?: UdsServerLog;
  /** Answers STATUS requests; without it they fail with `UNSUPPORTED`. */
  readonly status?: () => Promise<DaemonStatus>;
  /** Answers FETCH requests (a daemon's read-through); without it they fail with `UNSUPPORTED`. */
  readonly fetch?: (request: OriginRequest) => Promise<OriginReply>;
  /**
   * Figures of the daemon's own beside the peer's (its read-through's
   * `origin_*` counts), added to METRICS replies.
   */
  readonly metrics?: () => Readonly<Record<string, number>>;
  /**
   * Whether gets of sealed objects read before are answered in C, on the
   * socket's receive, with no JS per get (see `fast_opens.ts`), where the peer
   * counts reads served beside its leases (`ReadsBeside`). Default true.
   */
  readonly fastPath?: boolean;
}

const silent: UdsServerLog = { warn: () => {}, debug: () => {} };

/**
 * Serves a {@link Peer} on a Unix socket to the processes of this host.
 *
 * Each blob's memfd goes to the client with the ACQUIRE reply (`SCM_RIGHTS`),
 * so readers and writers share the object's memory without a copy. Leases
 * belong to the connection that acquired them: when a client goes away,
 * cleanly or not, its leases are released and its unsealed objects discarded.
 *
 * @example Serve a memory peer
 * ```ts ignore
 * import { MemoryPeer, UdsServer } from "@packice/packice";
 * await using peer = new MemoryPeer();
 * await using server = await UdsServer.listen(peer, "/tmp/packice-example.sock");
 * console.log(server.address); // "unix:///tmp/packice-example.sock"
 * ```
 */
export class UdsServer implements AsyncDisposable {
  readonly #context: Context;
  readonly #path: string;
  readonly #fd: number;
  readonly #token: number;
  readonly #connections = new Set<Connection>();
  /**
   * The reactor's release of each connection that ended on its own, until
   * it settles: the last one stops the reactor's thread, which the close
   * awaits.
   */
  readonly #released = new Set<Promise<void>>();
  readonly #fast: FastOpens | undefined;
  #accepting = true;
  /** Accept failed for want of fds or memory, and has not succeeded since: warned once. */
  #starved = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closing: Promise<void> | undefined;

  /**
   * Listens on `path` and serves `peer` until closed. A socket file left by a
   * daemon that is gone is replaced.
   *
   * @param peer The peer to serve; the server does not close it.
   * @param path The socket path.
   * @param options Socket mode, limits and log.
   * @returns The listening server.
   * @throws {AlreadyExistsError} When a live server answers on `path`.
   * @throws {InvalidArgumentError} When `path` exists and is not a socket, or is too long.
   * @throws {NativeUnavailableError} When the native library cannot be loaded.
   *
   * @example Share a file system peer with the processes of this host
   * ```ts ignore
   * import { FileSystemPeer, UdsServer } from "@packice/packice";
   * await using peer = await FileSystemPeer.open({ dir: "/var/lib/packice" });
   * await using server = await UdsServer.listen(peer, "/run/packice.sock", { mode: 0o660 });
   * console.log(`Serving on ${server.address}`);
   * ```
   */
  static async listen(
    peer: Peer,
    path: string,
    options: UdsServerOptions = {},
  ): Promise<UdsServer> {
    const native = await ensureNative();
    if (native === undefined) {
      throw new NativeUnavailableError("Cannot serve on a Unix socket: native library unavailable");
    }
    // A memfd per object and a socket per client: the usual soft limit of 1024 is too low.
    const fds = Number(native.symbols.pk_raise_nofile_limit());
    await removeStale(native, path);
    const cPath = new TextEncoder().encode(`${path}\0`);
    const fd = native.symbols.pk_uds_listen(cPath, 1024);
    if (fd < 0) {
      if (-fd === Errno.EADDRINUSE) {
        throw new AlreadyExistsError(`Cannot listen on ${path}: address in use`);
      }
      throw errnoError(-fd, `listen on ${path}`);
    }
    try {
      await Deno.chmod(path, options.mode ?? 0o600);
    } catch (error) {
      native.symbols.pk_close(fd);
      await Deno.remove(path).catch(() => {});
      throw error;
    }
    return new UdsServer(native, peer, path, fd, options, fds);
  }

  private constructor(
    native: Native,
    peer: Peer,
    path: string,
    fd: number,
    options: UdsServerOptions,
    fds: number,
  ) {
    this.#path = path;
    this.#fd = fd;
    this.#fast = options.fastPath === false ? undefined : FastOpens.start(native, peer, fds);
    this.#context = {
      native,
      reactor: Reactor.of(native),
      peer,
      maxQueuedBytes: options.maxQueuedBytes ?? 8 * 1024 * 1024,
      maxInflight: options.maxInflight ?? 256,
      log: options.log ?? silent,
      status: options.status,
      fetch: options.fetch,
      extraMetrics: options.metrics,
      metrics: new UdsMetrics(),
      fast: this.#fast,
      forget: (connection) => {
        if (!this.#connections.delete(connection)) return;
        this.#context.metrics.clients--;
        const released = connection.channel.close().catch((error) => {
          this.#context.log.warn(`Cannot stop watching a client: ${asPackiceError(error).message}`);
        });
        this.#released.add(released);
        void released.finally(() => this.#released.delete(released));
      },
    };
    const fast = this.#fast;
    if (fast !== undefined) this.#context.metrics.putMemory = () => fast.putMemory();
    this.#token = this.#context.reactor.adopt(fd, Linux.EPOLLIN, { ready: () => this.#accept() });
  }

  /** The socket path. */
  get path(): string {
    return this.#path;
  }

  /** The address for people and `connect()`: `unix:///path`. */
  get address(): string {
    return `unix://${this.#path}`;
  }

  /** How many clients are connected. */
  get connections(): number {
    return this.#connections.size;
  }

  /**
   * The server's counters by name, as `Peer.metrics()` gives them: requests
   * and errors per operation (`uds_requests_total{op="open"}`), bytes on the
   * socket, object bytes read and written, and clients. Clients get the same
   * figures, with the peer's, from the METRICS operation (`Client.metrics()`).
   */
  metrics(): Record<string, number> {
    return this.#context.metrics.snapshot();
  }

  /** Accepts the connections waiting, up to a budget per turn. */
  #accept(): void {
    if (!this.#accepting || this.#closing !== undefined) return;
    const { native, log } = this.#context;
    const symbols = native.symbols;
    for (let budget = 256; budget > 0; budget--) {
      const fd = symbols.pk_accept(this.#fd);
      if (fd === -Errno.EAGAIN) return;
      if (fd < 0) {
        if (-fd === Errno.ECONNABORTED || -fd === Errno.EINTR) continue;
        // Out of fds or memory: stop accepting for a moment instead of spinning.
        if (!this.#starved) {
          log.warn(`Cannot accept connections: ${errnoError(-fd, "accept").message}`);
        }
        this.#starved = true;
        this.#pause();
        return;
      }
      this.#starved = false;
      try {
        this.#connections.add(new Connection(this.#context, fd));
        this.#context.metrics.accepted++;
        this.#context.metrics.clients++;
      } catch (error) {
        log.warn(`Cannot serve a connection: ${asPackiceError(error).message}`);
      }
    }
  }

  /** Stops listening, disconnects every client (releasing their leases) and removes the socket. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#retry);
      const removed = this.#context.reactor.remove(this.#fd, this.#token);
      this.#context.native.symbols.pk_close(this.#fd);
      await Deno.remove(this.#path).catch(() => {});
      await Promise.all([...this.#connections].map((connection) => connection.close()));
      await Promise.all(this.#released);
      this.#fast?.close();
      await removed;
    })();
    return this.#closing;
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #pause(): void {
    this.#accepting = false;
    this.#context.reactor.modify(this.#fd, this.#token, 0);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#closing !== undefined) return;
      this.#accepting = true;
      this.#context.reactor.modify(this.#fd, this.#token, Linux.EPOLLIN);
    }, 100);
  }
}

/** Refuses a live server on `path` and removes a stale socket file. */
async function removeStale(native: Native, path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) {
    throw new InvalidArgumentError(`Cannot listen on ${path}: it exists and is not a socket`);
  }
  const fd = connectSocket(native, path);
  if (fd >= 0) {
    native.symbols.pk_close(fd);
    throw new AlreadyExistsError(`Cannot listen on ${path}: a server already answers there`);
  }
  if (-fd !== Errno.ECONNREFUSED) throw errnoError(-fd, `connect to ${path}`);
  await Deno.remove(path);
}
