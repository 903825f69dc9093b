/** The longest a wait on the JS thread polls before it sleeps, in nanoseconds. */
export const SPIN_NS = 30_000;
/** While spinning does not pay, one wait in this many tries again. */
const PROBE_EVERY = 64;
const MAX_CREDIT = 16;
/** What a spin that found nothing costs in credit. */
const MISS_COST = 4;

/**
 * Whether waits on the JS thread poll for a while before they sleep. Waking
 * a sleeping thread on another CPU is slow on a VM, and a round trip wakes
 * two, while an answer from a process running on the other CPU often takes
 * less than one wake-up: then a short spin halves the round trip. It does
 * not pay when the other process waits for this CPU (it cannot answer until
 * this thread sleeps: a spin that finds the answer only after losing its CPU
 * did not pay), nor when no answer is coming; so spins that find nothing cost
 * credit, and without credit only one wait in {@link PROBE_EVERY} spins.
 */
export class SpinPolicy {
  #credit = MAX_CREDIT / 2;
  #sinceProbe = 0;

  /** How long the next wait spins, in nanoseconds. */
  next(): number {
    if (this.#credit > 0) return SPIN_NS;
    if (++this.#sinceProbe < PROBE_EVERY) return 0;
    this.#sinceProbe = 0;
    return SPIN_NS;
  }

  /**
   * Records how a wait went.
   *
   * @param spun How long it could spin, in nanoseconds.
   * @param found Whether anything was ready.
   * @param waited How long it waited, in nanoseconds.
   * @param lostCpu Whether the thread lost its CPU while it spun: what it
   *   found then came because the other side got to run here, which it would
   *   have sooner had this thread slept.
   */
  record(spun: number, found: boolean, waited: number, lostCpu = false): void {
    if (spun === 0) return;
    if (found && waited <= spun && !lostCpu) this.#credit = Math.min(this.#credit + 1, MAX_CREDIT);
    else this.#credit = Math.max(this.#credit - MISS_COST, 0);
  }
}
