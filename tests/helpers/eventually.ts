/** Polling for a condition a test reaches asynchronously, within a time limit. */

/** How long {@link eventually} waits, and how often it looks. */
export interface EventuallyOptions {
  /** Milliseconds before giving up. Default 5000. */
  readonly timeout?: number;
  /** Milliseconds between looks. Default 10. */
  readonly interval?: number;
}

/** Polls `check` until it returns true; throws `Timed out waiting until <what>` after the timeout. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  { timeout = 5000, interval = 10 }: EventuallyOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
