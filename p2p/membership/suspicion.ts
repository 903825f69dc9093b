/**
 * The suspicion timer of one member, as memberlist's `suspicion.go`
 * (Lifeguard's dynamic suspicion): it starts at `max` and, with each
 * independent confirmation from another member, shrinks on a log scale down
 * to `min` once `k` members have confirmed.
 *
 * @module
 */
import type { TimerHandle, Timers } from "./timers.ts";

/**
 * The timeout after `n` of `k` wanted confirmations:
 * `max - (max - min) x log(n + 1) / log(k + 1)`, never below `min`.
 */
export function suspicionRemaining(
  n: number,
  k: number,
  elapsed: number,
  min: number,
  max: number,
): number {
  const fraction = k < 1 ? 1 : Math.log(n + 1) / Math.log(k + 1);
  const timeout = Math.max(min, Math.floor(max - fraction * (max - min)));
  return timeout - elapsed;
}

/** A running suspicion of one member; `onTimeout` declares it dead. */
export class Suspicion {
  readonly #timers: Timers;
  readonly #k: number;
  readonly #min: number;
  readonly #max: number;
  readonly #start: number;
  readonly #confirmations = new Set<string>();
  readonly #onTimeout: (confirmations: number) => void;
  #handle: TimerHandle | undefined;
  #n = 0;

  /**
   * Starts the timer: `max`, or `min` when no confirmations are wanted (`k < 1`).
   *
   * @param from The member that raised the suspicion; its own echoes do not confirm.
   * @param k Confirmations that bring the timeout down to `min`.
   * @param min The least timeout in milliseconds.
   * @param max The longest timeout in milliseconds.
   * @param timers The clock.
   * @param onTimeout Called once when the timer runs out, with the confirmations seen.
   */
  constructor(
    from: string,
    k: number,
    min: number,
    max: number,
    timers: Timers,
    onTimeout: (confirmations: number) => void,
  ) {
    this.#timers = timers;
    this.#k = k;
    this.#min = min;
    this.#max = max;
    this.#onTimeout = onTimeout;
    this.#confirmations.add(from);
    this.#start = timers.now();
    this.#handle = timers.setTimeout(() => this.#fire(), k < 1 ? min : max);
  }

  /** Confirmations counted so far. */
  get confirmations(): number {
    return this.#n;
  }

  /**
   * Counts `from` as confirming, once per member, and shortens the timer.
   *
   * @returns Whether this was news (to be gossiped on).
   */
  confirm(from: string): boolean {
    if (this.#handle === undefined || this.#n >= this.#k || this.#confirmations.has(from)) {
      return false;
    }
    this.#confirmations.add(from);
    this.#n++;
    const elapsed = this.#timers.now() - this.#start;
    const remaining = suspicionRemaining(this.#n, this.#k, elapsed, this.#min, this.#max);
    this.#timers.clearTimeout(this.#handle);
    this.#handle = this.#timers.setTimeout(() => this.#fire(), Math.max(0, remaining));
    return true;
  }

  /** Stops the timer (the member refuted or died otherwise). Idempotent. */
  cancel(): void {
    if (this.#handle === undefined) return;
    this.#timers.clearTimeout(this.#handle);
    this.#handle = undefined;
  }

  #fire(): void {
    if (this.#handle === undefined) return;
    this.#handle = undefined;
    this.#onTimeout(this.#n);
  }
}
