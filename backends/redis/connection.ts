/**
 * One connection to Redis that fails fast while Redis is away and comes back
 * by itself: calls made while it is not ready reject at once with
 * {@link StoreUnavailableError}, a command Redis does not answer in time
 * rejects the same way and drops the connection (as when Redis hangs), and a
 * lost connection is retried with capped exponential backoff. Scripts are
 * loaded on each connection and run by EVALSHA, falling back to EVAL (which
 * loads them again) on NOSCRIPT, as after a `SCRIPT FLUSH`.
 *
 * The client comes from the URL (see `link.ts`): a standalone Redis, or a
 * Redis Cluster, where each call goes to the master of the slot of its first
 * key and a node that goes away counts as Redis going away.
 *
 * @module
 */
import { ClosedError, InternalError, StoreUnavailableError } from "../../core/errors.ts";
import { type Link, link, redact } from "./link.ts";
import { ErrorReply } from "./resp.ts";
import type { Script } from "./lua.ts";

/** Where a Redis store reports connection trouble; a daemon's logger fits. */
export interface RedisLogger {
  /** Connection restored, state registered again. */
  info(message: string): void;
  /** Connection refused or lost; retrying. */
  warn(message: string): void;
}

/** Capped exponential backoff between connection attempts. */
export interface RedisBackoff {
  /** The first delay in milliseconds. Default 100. */
  readonly initial?: number;
  /** The longest delay in milliseconds. Default 5000. */
  readonly max?: number;
}

/**
 * Runs a script with its keys (all in one hash slot) and arguments on the
 * connection, whether or not it is ready for other calls.
 */
export type Exec = (
  script: Script,
  keys: readonly string[],
  args: readonly string[],
) => Promise<unknown>;

/** Options of {@link RedisConnection}. */
export interface RedisConnectionOptions {
  /** `redis://[user:pass@]host:port/db` or `rediss://...`. */
  readonly url: string;
  /** Attempts of the first connection before {@link RedisConnection.open} gives up. */
  readonly attempts: number;
  /** Delays between attempts. */
  readonly backoff: Required<RedisBackoff>;
  /**
   * Milliseconds Redis has to answer each call, connecting included; past it
   * (by up to a quarter more) the call rejects and the connection is dropped
   * and retried.
   */
  readonly commandTimeout: number;
  /** Where trouble is reported. */
  readonly log: RedisLogger | undefined;
  /** Scripts loaded on each connection, so that calls seldom meet NOSCRIPT. */
  readonly scripts: readonly Script[];
  /**
   * Runs on each connection before other calls are let through (`first` on
   * the first one); when it throws, the connection is retried.
   */
  readonly onReady: (first: boolean, exec: Exec) => Promise<void>;
}

/** Error replies of a Redis that will serve again soon. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/;
/** Error replies that mean Redis cannot serve right now, not that the call was wrong. */
const UNAVAILABLE_REPLY =
  /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY|NOAUTH|WRONGPASS|NOPERM|MISCONF|OOM)\b/;

/** A Redis connection with fail-fast calls and reconnection in the background. */
export class RedisConnection {
  readonly #client: Link;
  readonly #options: RedisConnectionOptions;
  /** The URL without its password, for messages. */
  readonly #where: string;
  #state: "connecting" | "ready" | "down" | "closed" = "connecting";
  #first = true;
  #sleep: { timer: ReturnType<typeof setTimeout>; wake: () => void } | undefined;
  #reconnecting: Promise<void> | undefined;
  /**
   * The watchdog's tick at which each call waiting for Redis started, oldest
   * first: Redis answers in order, so each call that settles takes the oldest.
   * One watchdog timer looks at the oldest, rather than a timer per call, and
   * counts time in its ticks, so that a call reads no clock.
   */
  readonly #waiting: number[] = [];
  #watchdog: ReturnType<typeof setInterval> | undefined;
  /** Ticks of the watchdog so far, one every quarter of the command timeout. */
  #tick = 0;
  /** Ticks after its start at which a call has waited the command timeout for sure. */
  #patience = 5;
  /** Why the connection was last dropped by the watchdog, until it is ready again. */
  #hung: string | undefined;

  /**
   * @param options The URL, retry policy and setup step.
   * @throws {InvalidArgumentError} When the URL is not a `redis://` or `rediss://` URL.
   */
  constructor(options: RedisConnectionOptions) {
    this.#where = redact(options.url);
    this.#options = options;
    this.#client = link(options.url, (cause) => this.#lost(cause));
  }

  /** Whether calls go through now. */
  get available(): boolean {
    return this.#state === "ready";
  }

  /**
   * Connects, retrying with backoff up to the configured attempts.
   *
   * @throws {StoreUnavailableError} When every attempt failed, or Redis refused the credentials.
   */
  async open(): Promise<void> {
    const timeout = this.#options.commandTimeout;
    const interval = Math.max(1, Math.floor(timeout / 4));
    // A call starts at some point between two ticks: one tick more than the timeout spans.
    this.#patience = Math.ceil(timeout / interval) + 1;
    this.#watchdog = setInterval(() => this.#watch(), interval);
    Deno.unrefTimer(this.#watchdog);
    await this.#connect(this.#options.attempts);
  }

  /**
   * Runs a script with its keys (all in one hash slot) and arguments.
   *
   * @throws {StoreUnavailableError} At once when Redis is not reachable now.
   */
  run(script: Script, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    if (this.#state !== "ready") return Promise.reject(this.#unavailable());
    return this.#exec(script, keys, args);
  }

  /** Stops reconnecting and closes the connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    if (this.#sleep !== undefined) {
      clearTimeout(this.#sleep.timer);
      this.#sleep.wake();
    }
    await this.#reconnecting;
    // Waits for pending calls, or for the watchdog to drop them when Redis hangs.
    if (this.#client.isOpen) await this.#client.close().catch(() => this.#client.destroy());
    clearInterval(this.#watchdog);
  }

  readonly #exec: Exec = async (script, keys, args) => {
    this.#waiting.push(this.#tick);
    try {
      try {
        return await this.#client.script("EVALSHA", script.sha, keys, args);
      } catch (error) {
        if (!(error instanceof ErrorReply && error.message.startsWith("NOSCRIPT"))) {
          throw this.#wrap(error, `script ${script.name}`);
        }
      }
      try {
        return await this.#client.script("EVAL", script.source, keys, args);
      } catch (error) {
        throw this.#wrap(error, `script ${script.name}`);
      }
    } finally {
      this.#waiting.shift();
    }
  };

  /** Settles as `call` does, watched like {@link RedisConnection.run} calls. */
  async #watched<T>(call: Promise<T>): Promise<T> {
    this.#waiting.push(this.#tick);
    try {
      return await call;
    } finally {
      this.#waiting.shift();
    }
  }

  /**
   * Drops the connection when the oldest waiting call has waited past the
   * command timeout: its calls reject, and a ready connection reconnects as
   * when Redis goes away (a connection attempt just fails, and is retried).
   */
  #watch(): void {
    this.#tick++;
    const oldest = this.#waiting[0];
    const timeout = this.#options.commandTimeout;
    if (oldest === undefined || this.#tick - oldest < this.#patience) return;
    this.#hung = `Redis at ${this.#where} did not answer within ${timeout} ms`;
    if (this.#state === "ready") this.#lost(`no answer within ${timeout} ms`);
    else this.#client.destroy();
  }

  async #connect(attempts: number): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        if (this.#client.isOpen) this.#client.destroy();
        await this.#watched(this.#client.connect());
        if (this.#client.preload) {
          await Promise.all(
            this.#options.scripts.map((script) =>
              this.#watched(this.#client.send(undefined, ["SCRIPT", "LOAD", script.source]))
            ),
          );
        }
        await this.#options.onReady(this.#first, this.#exec);
        if (this.#state === "closed") return;
        this.#first = false;
        this.#hung = undefined;
        this.#state = "ready";
        return;
      } catch (error) {
        if (this.#state === "closed") throw new ClosedError("Redis lease store is closed");
        const reply = error instanceof ErrorReply
          ? error
          : (error as Error).cause instanceof ErrorReply
          ? (error as Error).cause as ErrorReply
          : undefined;
        const reason = this.#hung ?? describe(reply ?? error);
        this.#hung = undefined;
        // On the first connection, a refusal (wrong credentials or database) or a
        // failing setup is not worth a retry; a Redis still starting up is.
        const fatal = this.#first &&
          (error instanceof InternalError ||
            (reply !== undefined && !TRANSIENT_REPLY.test(reply.message)));
        if (fatal || attempt >= attempts) {
          const tries = fatal ? "" : ` (${attempt} ${attempt === 1 ? "attempt" : "attempts"})`;
          throw new StoreUnavailableError(
            `Cannot connect to Redis at ${this.#where}: ${reason}${tries}`,
            { cause: error },
          );
        }
        const wait = backoffDelay(attempt, this.#options.backoff);
        this.#options.log?.warn(
          `Cannot reach Redis at ${this.#where}: ${reason}; retrying in ${wait} ms`,
        );
        await new Promise<void>((wake) => {
          this.#sleep = { timer: setTimeout(wake, wait), wake };
        });
        this.#sleep = undefined;
      }
    }
  }

  #lost(cause: unknown): void {
    if (this.#state !== "ready") return;
    this.#state = "down";
    this.#options.log?.warn(`Lost Redis at ${this.#where}: ${describe(cause)}; reconnecting`);
    this.#reconnecting = this.#connect(Infinity).then(
      () => this.#options.log?.info(`Reconnected to Redis at ${this.#where}`),
      () => {},
    );
  }

  #unavailable(): StoreUnavailableError {
    const why = this.#state === "closed" ? "the store is closed" : "reconnecting";
    return new StoreUnavailableError(`Redis at ${this.#where} is unavailable: ${why}`);
  }

  #wrap(error: unknown, what: string): StoreUnavailableError | InternalError {
    if (error instanceof ErrorReply) {
      if (UNAVAILABLE_REPLY.test(error.message)) {
        return new StoreUnavailableError(
          `Redis at ${this.#where} refused a call: ${error.message}`,
          {
            cause: error,
          },
        );
      }
      return new InternalError(`Redis ${what} failed: ${error.message}`, { cause: error });
    }
    const message = this.#hung === undefined
      ? `Redis at ${this.#where} is unavailable: ${describe(error)}`
      : `Metadata store unavailable: ${this.#hung}`;
    return new StoreUnavailableError(message, { cause: error });
  }
}

/** The delay before attempt `attempt + 1`: doubling from `initial`, capped at `max`, ±20% jitter. */
export function backoffDelay(attempt: number, backoff: Required<RedisBackoff>): number {
  const base = Math.min(backoff.max, backoff.initial * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map(describe))].join("; ");
  }
  return error instanceof Error ? error.message || error.name : String(error);
}
