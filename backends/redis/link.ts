/**
 * The client a Redis URL names: a standalone Redis (`redis://`, `rediss://`)
 * over one auto-pipelined {@link RespSocket}, or the seeds of a Redis Cluster
 * (`redis+cluster://host:port,host:port/`, `rediss+cluster://`) through
 * `@redis/client`, which follows the cluster's slots and redirections. Both
 * report an error reply as an {@link ErrorReply}. Subscriptions take a
 * connection of their own ({@link pushLink}).
 *
 * @module
 */
// @ts-types="./redis_client.d.ts"
import {
  createCluster,
  ErrorReply as ClusterErrorReply,
  type RedisClusterOptions,
} from "npm:@redis/client@6.3.1";
import { InvalidArgumentError } from "../../core/errors.ts";
import { ErrorReply, type RespValue } from "./resp.ts";
import { type RespEndpoint, RespSocket } from "./resp_socket.ts";

/** What a connection needs of a client, a standalone one or a cluster. */
export interface Link {
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): void;
  /**
   * Sends a command to the node serving `key`'s slot (any node when undefined).
   *
   * @throws {ErrorReply} When Redis answers with an error.
   */
  send(key: string | undefined, args: readonly string[]): Promise<unknown>;
  /**
   * Runs a script (`EVALSHA` with its SHA1, or `EVAL` with its source) on the
   * node serving the slot of its first key.
   *
   * @throws {ErrorReply} When Redis answers with an error.
   */
  script(
    command: "EVALSHA" | "EVAL",
    body: string,
    keys: readonly string[],
    args: readonly string[],
  ): Promise<unknown>;
  /** Whether scripts are loaded up front (a cluster loads each on its node at first use). */
  readonly preload: boolean;
}

/** The protocols of a Redis URL, and whether each names a cluster. */
const PROTOCOLS: Record<string, boolean> = {
  "redis:": false,
  "rediss:": false,
  "redis+cluster:": true,
  "rediss+cluster:": true,
};

/**
 * Checks a Redis URL and returns it without its password, for messages.
 *
 * @throws {InvalidArgumentError} When it is not a `redis://`, `rediss://`,
 *   `redis+cluster://` or `rediss+cluster://` URL.
 */
export function redact(url: string): string {
  const parsed = parseUrl(url);
  if (parsed.password === "") return url;
  return url.replace(/^([a-z+]+:\/\/[^:@/]*):[^@/]*@/, "$1:***@");
}

/** Whether a Redis URL names a cluster (`redis+cluster://`). */
export function isClusterUrl(url: string): boolean {
  return PROTOCOLS[parseUrl(url).protocol] === true;
}

function parseUrl(url: string): URL {
  let parsed: URL;
  try {
    // A cluster URL lists its seeds where the host goes: parse with the first seed alone.
    parsed = new URL(url.replace(/^([a-z+]+:\/\/(?:[^@/]*@)?[^,/]*)(?:,[^/]*)?/, "$1"));
  } catch {
    throw new InvalidArgumentError(`Invalid Redis URL: ${JSON.stringify(url)}`);
  }
  if (!(parsed.protocol in PROTOCOLS)) {
    throw new InvalidArgumentError(
      `Invalid Redis URL: expected redis://, rediss://, redis+cluster:// or ` +
        `rediss+cluster://, got ${parsed.protocol}//`,
    );
  }
  return parsed;
}

/** Where a standalone Redis URL points, with its credentials and database. */
function endpointOf(parsed: URL): RespEndpoint {
  const database = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  if (!Number.isSafeInteger(database) || database < 0) {
    throw new InvalidArgumentError(
      `Invalid Redis URL: the database must be a number, got ${parsed.pathname.slice(1)}`,
    );
  }
  return {
    hostname: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: parsed.port === "" ? 6379 : Number(parsed.port),
    tls: parsed.protocol === "rediss:",
    username: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === "" ? undefined : decodeURIComponent(parsed.password),
    database,
  };
}

/**
 * The client of a URL. Neither queues calls while disconnected nor
 * reconnects by itself: the caller reconnects, with timers it can cancel.
 *
 * @param lost Told when an open connection is lost.
 */
export function link(url: string, lost: (cause: unknown) => void): Link {
  const parsed = parseUrl(url);
  if (!isClusterUrl(url)) {
    const endpoint = endpointOf(parsed);
    let socket: RespSocket | undefined;
    /** Gives up the connection attempt under way, if any. */
    let abandon: (() => void) | undefined;
    return {
      get isOpen() {
        return socket?.isOpen ?? false;
      },
      connect: () =>
        new Promise((resolve, reject) => {
          let mine: RespSocket | undefined;
          let abandoned = false;
          abandon = () => {
            abandoned = true;
            mine?.destroy();
            reject(new Error("The connection attempt was abandoned"));
          };
          RespSocket.open(endpoint, (cause) => {
            // A socket replaced by a newer one is no news.
            if (mine === socket) lost(cause);
          }, (opened) => {
            mine = opened;
            if (abandoned) opened.destroy();
            else socket = opened;
          }).then((opened) => {
            abandon = undefined;
            resolve(opened);
          }, reject);
        }),
      close: () => socket?.close() ?? Promise.resolve(),
      destroy: () => {
        abandon?.();
        socket?.destroy();
      },
      send: (_key, args) =>
        socket === undefined
          ? Promise.reject(new Error("Not connected to Redis"))
          : socket.send(args),
      script: (command, body, keys, args) =>
        socket === undefined
          ? Promise.reject(new Error("Not connected to Redis"))
          : socket.sendScript(command, body, keys, args),
      preload: true,
    };
  }
  const cluster = createCluster(clusterOptions(url, parsed));
  // A node's connection that fails stays closed (no reconnection inside the
  // client): the whole cluster connection counts as lost, and is made again.
  cluster.on("error", () => {});
  cluster.on("node-error", (error: unknown) => lost(error));
  cluster.on("node-disconnect", () => lost("a cluster node disconnected"));
  return {
    get isOpen() {
      return cluster.isOpen;
    },
    connect: () => cluster.connect().catch((error) => Promise.reject(asErrorReply(error))),
    close: () => cluster.close(),
    destroy: () => cluster.destroy(),
    send: (key, args) =>
      cluster.sendCommand(key, false, args).catch((error) => Promise.reject(asErrorReply(error))),
    script: (command, body, keys, args) =>
      cluster.sendCommand(keys[0], false, [command, body, String(keys.length), ...keys, ...args])
        .catch((error) => Promise.reject(asErrorReply(error))),
    preload: false,
  };
}

/** Subscriptions to channels over a connection of their own (see `subscriber.ts`). */
export interface PushLink {
  /** Subscribes `channel`; settles once Redis confirmed it. */
  subscribe(channel: string): Promise<void>;
  /** Unsubscribes `channel`. */
  unsubscribe(channel: string): Promise<void>;
  /** Closes the connection now. */
  destroy(): void;
}

/**
 * Opens a {@link PushLink} to the Redis of a URL: on a standalone Redis one
 * socket, `SSUBSCRIBE` (or `SUBSCRIBE` on a Redis before 7, which does not
 * know it); on a cluster, the client's sharded subscriptions, each on the
 * master of its channel's slot.
 *
 * @param deliver Given each message published on a channel subscribed.
 * @param lost Told once when the connection fails or Redis closes it.
 */
export async function pushLink(
  url: string,
  deliver: (channel: string, payload: string) => void,
  lost: (cause: unknown) => void,
): Promise<PushLink> {
  const parsed = parseUrl(url);
  if (!isClusterUrl(url)) {
    let mine: RespSocket | undefined;
    const onPush = (message: RespValue[]) => {
      if (typeof message[1] === "string" && typeof message[2] === "string") {
        deliver(message[1], message[2]);
      }
    };
    const socket = await RespSocket.open(
      endpointOf(parsed),
      lost,
      (opened) => mine = opened,
      onPush,
    )
      .catch((error) => {
        mine?.destroy();
        throw error;
      });
    let sharded = true;
    return {
      subscribe: async (channel) => {
        try {
          await socket.send([sharded ? "SSUBSCRIBE" : "SUBSCRIBE", channel]);
        } catch (error) {
          const old = error instanceof ErrorReply && /unknown command/i.test(error.message);
          if (!sharded || !old) throw error;
          // A Redis before 7: plain channels, which the scripts publish on there too.
          sharded = false;
          await socket.send(["SUBSCRIBE", channel]);
        }
      },
      unsubscribe: async (channel) => {
        await socket.send([sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", channel]);
      },
      destroy: () => socket.destroy(),
    };
  }
  const cluster = createCluster(clusterOptions(url, parsed));
  let gone = false;
  const once = (cause: unknown) => {
    if (gone) return;
    gone = true;
    lost(cause);
  };
  cluster.on("error", () => {});
  cluster.on("node-error", once);
  cluster.on("node-disconnect", () => once("a cluster node disconnected"));
  try {
    await cluster.connect();
  } catch (error) {
    gone = true;
    cluster.destroy();
    throw asErrorReply(error);
  }
  const listener = (message: string, channel: string) => deliver(channel, message);
  return {
    subscribe: (channel) =>
      cluster.sSubscribe(channel, listener).catch((error) => Promise.reject(asErrorReply(error))),
    unsubscribe: (channel) =>
      cluster.sUnsubscribe(channel, listener).catch((error) => Promise.reject(asErrorReply(error))),
    destroy: () => {
      gone = true;
      cluster.destroy();
    },
  };
}

/** The options of a cluster client of `url`: its seeds, credentials and TLS. */
function clusterOptions(url: string, parsed: URL): RedisClusterOptions {
  const tls = parsed.protocol === "rediss+cluster:";
  const seeds = url.replace(/^[a-z+]+:\/\/(?:[^@/]*@)?/, "").split("/")[0]!.split(",");
  return {
    rootNodes: seeds.map((seed) => ({ url: `${tls ? "rediss" : "redis"}://${seed}` })),
    defaults: {
      ...(parsed.username === "" ? {} : { username: decodeURIComponent(parsed.username) }),
      ...(parsed.password === "" ? {} : { password: decodeURIComponent(parsed.password) }),
      disableOfflineQueue: true,
      socket: { reconnectStrategy: false, ...(tls ? { tls: true } : {}) },
    },
    // RESP2: this client decodes it several times faster than RESP3 for the
    // small array replies the scripts give (measured: 100k/s against 24-70k/s).
    RESP: 2,
    disableOfflineQueue: true,
    // No timeout per command: each would cost an AbortSignal and its timer (a
    // third of the CPU of a call, measured); the connection's watchdog times
    // calls out instead.
    commandOptions: { timeout: 0 },
  };
}

/** An error reply of the cluster client as this backend's {@link ErrorReply}; other errors as they are. */
function asErrorReply(error: unknown): unknown {
  if (error instanceof ClusterErrorReply) return new ErrorReply(error.message);
  const cause = (error as Error | undefined)?.cause;
  if (cause instanceof ClusterErrorReply) return new ErrorReply(cause.message);
  return error;
}
