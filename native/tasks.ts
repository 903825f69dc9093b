/**
 * Work a store runs in the background, such as unmapping on another thread,
 * kept so that `close()` can wait for all of it: nothing outlives the store.
 */
export class Tasks {
  readonly #pending = new Set<Promise<void>>();

  /**
   * Tracks a task until it settles. A task handles the failures it expects;
   * anything else it throws is reported on the console, as nobody awaits it.
   *
   * @param what What the task does, for the report.
   * @param task The task.
   */
  track(what: string, task: Promise<unknown>): void {
    const tracked: Promise<void> = task.then(
      () => {},
      (error) => console.error(`Packice: ${what} failed in the background:`, error),
    ).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  /** Waits until every task, including those started meanwhile, has settled. */
  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
  }
}
