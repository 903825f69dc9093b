/** Items with a deadline and the one timer that waits for the nearest of them. */
import type { Clock } from "./clock.ts";
import { Deadlines } from "./deadlines.ts";

/**
 * Items by deadline, with one unref'd timer set for the nearest: when it
 * fires, `onDue` runs and takes the items that are due with
 * {@link DeadlineTimer.due}, which sets the timer for the next.
 */
export class DeadlineTimer<T> {
  readonly #deadlines = new Deadlines<T>();
  readonly #clock: Clock;
  readonly #onDue: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #closed = false;

  constructor(clock: Clock, onDue: () => void) {
    this.#clock = clock;
    this.#onDue = onDue;
  }

  /** How many items wait for their deadline. */
  get size(): number {
    return this.#deadlines.size;
  }

  /** Adds `item`, due at `at`; the timer moves forward if it is the nearest. */
  add(at: number, item: T): void {
    this.#deadlines.add(at, item);
    if (at < this.#timerAt) this.#arm();
  }

  /** Takes the items whose deadline has come by the clock, and sets the timer for the next. */
  due(): T[] {
    const due = this.#deadlines.due(this.#clock.now());
    this.#arm();
    return due;
  }

  /** Stops the timer for good and forgets every item. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#deadlines.clear();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = this.#deadlines.next ?? Infinity;
    if (this.#timerAt === Infinity || this.#closed) return;
    const delay = Math.min(Math.max(this.#timerAt - this.#clock.now(), 0), 2 ** 31 - 1);
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.#onDue();
    }, delay);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
