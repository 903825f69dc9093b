/**
 * A holder's defence against sending the same piece twice in a row: in a
 * broadcast, receivers choose pieces from what they knew a moment ago, so
 * several may ask the first holder for one piece that another receiver is
 * already getting. A range asked again by a daemon within the window is
 * answered 503 (busy): the asker gets it from the receiver that has it, or
 * comes back when the window is over. BitTorrent's super-seeding does the
 * same for an initial seed.
 *
 * @module
 */

/** Ranges of objects sent lately, by `id start-end`. */
export class RepeatGuard {
  readonly #windowMs: number;
  readonly #sent = new Map<string, number>();
  readonly #clock: () => number;

  /**
   * Creates a guard that has seen nothing.
   *
   * @param windowMs How long a range sent is not sent again. 0 turns the guard off.
   * @param clock The time source. Default `performance.now`.
   */
  constructor(windowMs: number, clock: () => number = () => performance.now()) {
    this.#windowMs = windowMs;
    this.#clock = clock;
  }

  /** Whether `key` may be sent now; if so, it counts as sent now. */
  admit(key: string): boolean {
    if (this.#windowMs <= 0) return true;
    const now = this.#clock();
    const last = this.#sent.get(key);
    if (last !== undefined && now - last < this.#windowMs) return false;
    this.#sent.set(key, now);
    if (this.#sent.size > 4096) {
      for (const [other, at] of this.#sent) {
        if (now - at >= this.#windowMs) this.#sent.delete(other);
      }
    }
    return true;
  }
}
