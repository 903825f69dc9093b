/**
 * Whether a source is slow: its last piece took far longer per byte than its
 * own mean so far (Dragonfly's "bad peer" rule). A source compared with itself
 * is not punished for a slow link, only for stalling.
 *
 * @module
 */

/** The per-byte times of one source's pieces. */
export class SourceSpeed {
  #pieces = 0;
  #meanMsPerByte = 0;
  readonly #factor: number;
  readonly #warmup: number;

  /**
   * Creates a record with no pieces.
   *
   * @param factor How many times its mean a piece may take. Default 5.
   * @param warmup Pieces seen before any is judged. Default 3.
   */
  constructor(factor = 5, warmup = 3) {
    this.#factor = factor;
    this.#warmup = warmup;
  }

  /**
   * Records one piece of `bytes` that took `ms`.
   *
   * @returns Whether it was far behind the source's mean of the pieces before it.
   */
  record(bytes: number, ms: number): boolean {
    const msPerByte = ms / Math.max(1, bytes);
    const slow = this.#pieces >= this.#warmup && msPerByte > this.#factor * this.#meanMsPerByte;
    this.#pieces++;
    this.#meanMsPerByte += (msPerByte - this.#meanMsPerByte) / this.#pieces;
    return slow;
  }
}
