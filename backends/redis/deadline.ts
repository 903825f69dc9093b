/**
 * One deadline for many calls, kept with a single timer.
 *
 * @module
 */

/** What {@link Deadline.within} gives for a call that did not settle in time. */
export const LATE: unique symbol = Symbol("late");

interface Waiting {
  readonly at: number;
  done: boolean;
  readonly late: () => void;
}

/**
 * Races calls against a deadline `ms` after each starts. Deadlines come due
 * in the order calls start, so one timer, armed for the oldest call still
 * waiting, serves them all: a call costs no timer of its own.
 */
export class Deadline {
  readonly #ms: number;
  readonly #waiting: Waiting[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** @param ms How long each call may take. */
  constructor(ms: number) {
    this.#ms = ms;
  }

  /** How long each call may take, in milliseconds. */
  get ms(): number {
    return this.#ms;
  }

  /** Settles as `call` does, or with {@link LATE} once `ms` have passed first. */
  within<T>(call: Promise<T>): Promise<T | typeof LATE> {
    return new Promise((resolve, reject) => {
      const waiting: Waiting = {
        at: performance.now() + this.#ms,
        done: false,
        late: () => resolve(LATE),
      };
      this.#waiting.push(waiting);
      this.#arm();
      call.then(
        (value) => {
          waiting.done = true;
          resolve(value);
        },
        (error) => {
          waiting.done = true;
          reject(error);
        },
      );
    });
  }

  /** Stops the timer; calls still waiting settle as their own calls do. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#waiting.length = this.#head = 0;
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#head === this.#waiting.length) return;
    const wait = Math.max(0, this.#waiting[this.#head]!.at - performance.now());
    this.#timer = setTimeout(() => this.#fire(), wait);
    Deno.unrefTimer(this.#timer);
  }

  #fire(): void {
    this.#timer = undefined;
    const now = performance.now();
    const waiting = this.#waiting;
    while (this.#head < waiting.length) {
      const next = waiting[this.#head]!;
      if (!next.done && next.at > now) break;
      this.#head++;
      if (!next.done) {
        next.done = true;
        next.late();
      }
    }
    if (this.#head === waiting.length) {
      waiting.length = this.#head = 0;
    } else if (this.#head > 1024) {
      waiting.splice(0, this.#head);
      this.#head = 0;
    }
    this.#arm();
  }
}
