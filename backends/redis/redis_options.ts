/** The options of a RedisLeaseStore, with the checks of the values they take. */
import type { Clock } from "../../core/clock.ts";
import { InvalidArgumentError } from "../../core/errors.ts";
import type { RedisBackoff, RedisLogger } from "./connection.ts";

/** Options of `RedisLeaseStore.connect`. */
export interface RedisLeaseStoreOptions {
  /**
   * `redis://[user:pass@]host:port/db`, or `rediss://` for TLS; for a Redis
   * Cluster, `redis+cluster://[user:pass@]host:port,host:port,...` (or
   * `rediss+cluster://`) with some of its masters. Default
   * `redis://127.0.0.1:6379/0`.
   */
  readonly url?: string;
  /**
   * How many hash slots the objects of the namespace are spread over, each
   * with its own indexes: `list` and `counts` make one call per shard. Every
   * daemon of a namespace must use the same count, at most 16,384 (a Redis
   * Cluster's hash slots). Default 1 for a standalone Redis, 64 for a
   * cluster.
   */
  readonly shards?: number;
  /** Every key is `<namespace>:...`; daemons sharing a namespace share objects. Default `packice`. */
  readonly namespace?: string;
  /** This node's id in the namespace. Default `<hostname>-<pid>`. */
  readonly node?: string;
  /** Where this node serves, recorded with each object it holds. */
  readonly address?: string;
  /** The clock that decides expiry: pass the peer's. Default: the system clock. */
  readonly clock?: Clock;
  /**
   * How long, in milliseconds, this node counts as alive after its last
   * heartbeat (sent every third of it). Its leases without a TTL end when it
   * stops counting. Default 15000.
   */
  readonly liveness?: number;
  /** Attempts at the first connection before giving up; `Infinity` keeps trying. Default 10. */
  readonly connectAttempts?: number;
  /** Delays between connection attempts, also when reconnecting. */
  readonly backoff?: RedisBackoff;
  /**
   * Milliseconds Redis has to answer each call. A call past it (checked every
   * quarter of it) fails with `StoreUnavailableError` and the connection
   * is dropped and retried, as when Redis goes away: this bounds calls to a
   * Redis that is up but hung. Default 2000.
   */
  readonly commandTimeout?: number;
  /**
   * Milliseconds a READ of an object this node holds waits for Redis before
   * it is served here all the same, as during an outage; until Redis answers
   * again, such reads do not wait for it at all. Default 200.
   */
  readonly readFailover?: number;
  /** Where connection trouble and recovery are reported. Default: nowhere. */
  readonly log?: RedisLogger;
}

/** The node id a daemon or store takes when given none: host and pid. */
export function defaultNode(): string {
  let host = "node";
  try {
    host = Deno.hostname();
  } catch {
    // No --allow-sys: the pid alone still tells daemons on one host apart.
  }
  return `${host}-${Deno.pid}`;
}

export function checkName(value: string, what: string): string {
  // deno-lint-ignore no-control-regex
  if (typeof value !== "string" || value.length === 0 || /[\u0000-\u0020\u007f]/.test(value)) {
    throw new InvalidArgumentError(
      `Invalid ${what}: expected a non-empty string without spaces or control characters`,
    );
  }
  return value;
}

export function checkCount(
  value: number,
  what: string,
  min: number,
  endless: boolean,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (endless && value === Infinity) return value;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(
      max === Number.MAX_SAFE_INTEGER
        ? `Invalid ${what}: expected an integer of at least ${min}`
        : `Invalid ${what}: expected an integer from ${min} to ${max}`,
    );
  }
  return value;
}
