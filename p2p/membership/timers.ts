/**
 * The clock and timers the membership runs on, injectable so a test drives
 * suspicion and probes with a fake clock instead of sleeping.
 *
 * @module
 */

/** A handle of a scheduled callback. */
export type TimerHandle = number;

/** Wall-clock time and one-shot timers. */
export interface Timers {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a callback not yet called; a handle already called or cancelled is ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** The system clock and `setTimeout`. */
export const systemTimers: Timers = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number): TimerHandle =>
    setTimeout(fn, Math.max(0, ms)) as unknown as TimerHandle,
  clearTimeout: (handle: TimerHandle) => clearTimeout(handle),
});
