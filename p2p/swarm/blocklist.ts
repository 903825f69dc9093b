/**
 * Sources not to ask for a while: they sent bytes that do not verify, timed
 * out, or were far slower than their own mean. Shared by all transfers of a
 * daemon, as Kraken's 30 s blacklist is.
 *
 * @module
 */
import { type Clock, monotonic } from "./clock.ts";

/** A short-lived set of blocked source keys (such as `node address`). */
export class Blocklist {
  readonly #until = new Map<string, number>();
  readonly #ms: number;
  readonly #clock: Clock;

  /**
   * Creates an empty blocklist.
   *
   * @param ms How long a block lasts. Default 30 000.
   * @param clock The time source. Default `performance.now`.
   */
  constructor(ms = 30_000, clock: Clock = monotonic) {
    if (!(ms >= 0)) throw new RangeError(`Cannot block for ${ms} ms: not a duration`);
    this.#ms = ms;
    this.#clock = clock;
  }

  /** Blocks `key` for the blocklist's duration from now. */
  block(key: string): void {
    this.#until.set(key, this.#clock() + this.#ms);
  }

  /** Whether `key` is blocked now; an expired block is forgotten. */
  blocked(key: string): boolean {
    const until = this.#until.get(key);
    if (until === undefined) return false;
    if (this.#clock() < until) return true;
    this.#until.delete(key);
    return false;
  }

  /** How many keys are blocked now. */
  get size(): number {
    for (const key of [...this.#until.keys()]) this.blocked(key);
    return this.#until.size;
  }
}
