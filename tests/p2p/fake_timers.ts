/** A clock and timers that move only when a test says so. */
import type { TimerHandle, Timers } from "../../p2p/membership/timers.ts";

/** Timers that fire in order of their due time as {@link FakeTimers.advance} passes it. */
export class FakeTimers implements Timers {
  #now: number;
  #next = 1;
  readonly #due = new Map<TimerHandle, { at: number; fn: () => void }>();

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = this.#next++;
    this.#due.set(handle, { at: this.#now + Math.max(0, ms), fn });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#due.delete(handle);
  }

  /** Timers waiting. */
  get pending(): number {
    return this.#due.size;
  }

  /** Moves the clock `ms` forward, firing each timer due on the way at its own time. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let first: [TimerHandle, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#due) {
        if (entry[1].at <= end && (first === undefined || entry[1].at < first[1].at)) first = entry;
      }
      if (first === undefined) break;
      this.#due.delete(first[0]);
      this.#now = Math.max(this.#now, first[1].at);
      first[1].fn();
    }
    this.#now = end;
  }
}
