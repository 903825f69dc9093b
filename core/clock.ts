/** A source of the current time in milliseconds, injectable so tests never sleep. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock that moves only when told, for tests of expiry.
 *
 * @example
 * ```ts
 * import { ManualClock } from "@packice/packice";
 * const clock = new ManualClock(1000);
 * clock.advance(500);
 * console.log(clock.now()); // 1500
 * ```
 */
export class ManualClock implements Clock {
  #now: number;

  /**
   * Creates the instance.
   *
   * @param start The initial time in milliseconds.
   */
  constructor(start = 0) {
    this.#now = start;
  }

  /** The current manual time. */
  now(): number {
    return this.#now;
  }

  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.#now += ms;
  }
}
