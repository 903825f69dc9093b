// The part of npm:@redis/client this backend uses. Its own declarations
// reference Node's types ("/// <reference types=\"node\" />"), which Deno's
// type checker and `deno doc` cannot resolve without @types/node: one warning
// per file on every run.

/** An error reply of Redis. */
export class ErrorReply extends Error {}

/** Options of {@link createCluster} that a backend of a Redis Cluster sets. */
export interface RedisClusterOptions {
  rootNodes: Array<{ url: string }>;
  defaults?: {
    username?: string;
    password?: string;
    disableOfflineQueue?: boolean;
    socket?: { reconnectStrategy?: false; tls?: boolean };
  };
  RESP?: 2 | 3;
  disableOfflineQueue?: boolean;
  /** Options of every command; a `timeout` of 0 sets none. */
  commandOptions?: { timeout?: number };
}

/** A connection to a Redis Cluster, as a backend drives it. */
export interface RedisCluster {
  readonly isOpen: boolean;
  on(event: "error" | "node-error" | "node-disconnect", listener: (cause: unknown) => void): this;
  connect(): Promise<RedisCluster>;
  close(): Promise<void>;
  destroy(): void;
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: readonly string[],
  ): Promise<unknown>;
  /** Subscribes a sharded channel on the master of its slot; settles once confirmed. */
  sSubscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void>;
  /** Unsubscribes the listener of a sharded channel. */
  sUnsubscribe(
    channel: string,
    listener: (message: string, channel: string) => void,
  ): Promise<void>;
}

/** Makes a client of a cluster from its seed nodes; it connects on `connect()`. */
export function createCluster(options: RedisClusterOptions): RedisCluster;
