/**
 * Lifeguard's local health multiplier, as memberlist's `awareness.go`: a
 * score from 0 (healthy) to `max - 1` that rises when this member misses its
 * own deadlines (probes without the nacks it expected, refutations it had to
 * send, timers that fired late) and falls with each probe answered in time.
 * Probe intervals and timeouts are scaled by `score + 1`, so an overloaded
 * member slows down instead of declaring healthy members dead.
 *
 * @module
 */

/** The local health score of this member. */
export class Awareness {
  readonly #max: number;
  #score = 0;

  /**
   * @param max The largest multiplier; the score stays in `[0, max - 1]`.
   * @throws {RangeError} When `max` is not a positive integer.
   */
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`Invalid awareness maximum: ${max}: expected a positive integer`);
    }
    this.#max = max;
  }

  /** The score: 0 is healthy. */
  get score(): number {
    return this.#score;
  }

  /** Moves the score by `delta`, clamped to `[0, max - 1]`. */
  apply(delta: number): void {
    this.#score = Math.min(this.#max - 1, Math.max(0, this.#score + delta));
  }

  /** `timeout` stretched by the score: `timeout x (score + 1)`. */
  scale(timeout: number): number {
    return timeout * (this.#score + 1);
  }
}
