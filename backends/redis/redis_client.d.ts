// The part of npm:@redis/client this backend uses. Its own declarations
// reference Node's types ("/// <reference types=\"node\" />"), which Deno's
// type checker and `deno doc` cannot resolve without @types/node: one warning
// per file on every run.

/** Options of {@link createClient} that the backend sets. */
export interface RedisClientOptions {
  url?: string;
  RESP?: 2 | 3;
  disableOfflineQueue?: boolean;
  socket?: { reconnectStrategy?: false | ((retries: number, cause: Error) => number | Error) };
}

/** A connection, as the backend drives it. */
export interface RedisClient {
  readonly isOpen: boolean;
  on(event: "error", listener: (error: unknown) => void): this;
  on(event: "terminated", listener: (cause: unknown) => void): this;
  connect(): Promise<RedisClient>;
  close(): Promise<void>;
  destroy(): void;
  sendCommand(args: readonly string[]): Promise<unknown>;
}

/** Makes a client; it connects on `connect()`. */
export function createClient(options: RedisClientOptions): RedisClient;

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
}

/** Makes a client of a cluster from its seed nodes; it connects on `connect()`. */
export function createCluster(options: RedisClusterOptions): RedisCluster;
