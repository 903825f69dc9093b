/** Tying a test's own clean-up to the close of what it made. */

/** Makes `closable.close()` run `cleanup` once the original close has finished; returns `closable`. */
export function closeAlso<T extends { close(): Promise<void> }>(
  closable: T,
  cleanup: () => PromiseLike<void>,
): T {
  const close = closable.close.bind(closable);
  closable.close = async () => {
    await close();
    await cleanup();
  };
  return closable;
}
