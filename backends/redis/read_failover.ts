/** Read failover: how long a read of a copy held here waits for Redis, and whether it skips Redis while Redis is slow. */
import type { RedisLogger } from "./connection.ts";
import { Deadline } from "./deadline.ts";

/**
 * The circuit for reads of objects held here: closed, a read waits for Redis
 * up to {@link ReadFailover.deadline}; open (`degraded`) from the first read
 * that waited that long until Redis answers that read, reads skip Redis.
 */
export class ReadFailover {
  /** Set when a read found Redis slow: reads of objects held here skip it until it answers. */
  degraded = false;
  /** How long a read of an object held here waits for Redis. */
  readonly deadline: Deadline;
  readonly #log: RedisLogger | undefined;

  constructor(ms: number, log: RedisLogger | undefined) {
    this.deadline = new Deadline(ms);
    this.#log = log;
  }

  /** A read waited the deadline for `call`: reads of objects held here skip Redis until it answers. */
  slow(call: Promise<unknown>): void {
    if (!this.degraded) {
      this.degraded = true;
      this.#log?.warn(
        `Redis did not answer a read within ${this.deadline.ms} ms: objects held here ` +
          `are read without it until it answers`,
      );
    }
    call.then(() => this.degraded = false, () => {});
  }

  /** Stops the deadline's timer. */
  close(): void {
    this.deadline.close();
  }
}
