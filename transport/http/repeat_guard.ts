/**
 * A holder's defence against sending the same piece twice in a row: in a
 * broadcast, receivers choose pieces from what they knew a moment ago, so
 * several may ask the first holder for one piece that another receiver is
 * already getting. A range asked again by a daemon while it is being sent,
 * or within the window after, is answered 503 (busy): the asker gets it
 * from the receiver that has it, or comes back when the window is over. The
 * window runs from the end of the send, so a slow send (a loaded host)
 * does not let repeats through. BitTorrent's super-seeding does the
 * same for an initial seed.
 *
 * @module
 */

/** Ranges of objects sent lately, by `id start-end`. */
export class RepeatGuard {
  readonly #windowMs: number;
  /** When each range's last send ended; Infinity while it is being sent. */
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

  /**
   * Whether `key` may be sent now.
   *
   * @returns Undefined when it may not; else a function to call when the
   *   send ends, with false when nothing was sent after all.
   */
  admit(key: string): ((sent?: boolean) => void) | undefined {
    if (this.#windowMs <= 0) return () => {};
    const now = this.#clock();
    const last = this.#sent.get(key);
    if (last !== undefined && now - last < this.#windowMs) return undefined;
    this.#sent.set(key, Infinity);
    if (this.#sent.size > 4096) {
      for (const [other, at] of this.#sent) {
        if (now - at >= this.#windowMs) this.#sent.delete(other);
      }
    }
    let open = true;
    return (sent = true) => {
      if (!open) return;
      open = false;
      if (sent) this.#sent.set(key, this.#clock());
      else this.#sent.delete(key);
    };
  }
}
