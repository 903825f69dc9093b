/**
 * Who may read a data directory: its owner alone. Objects are whatever
 * clients stored, so another user of the host must not read them from disk
 * any more than over the 0600 socket.
 *
 * @module
 */

/** The mode of the data directory and of every directory in it. */
export const DIR_MODE = 0o700;

/** The mode of every file in the data directory. */
export const FILE_MODE = 0o600;

/**
 * Creates directory `path` (with its parents) as {@link DIR_MODE}, or
 * tightens it to that mode when it exists with bits for its group or others.
 * A directory this process may not chmod is left as it is, with a warning:
 * its owner chose to share it.
 *
 * @param path The directory.
 */
export async function privateDir(path: string): Promise<void> {
  // A umask can only narrow the mode asked for here.
  await Deno.mkdir(path, { recursive: true, mode: DIR_MODE });
  const { mode } = await Deno.stat(path);
  if (mode === null || (mode & 0o077) === 0) return;
  try {
    await Deno.chmod(path, DIR_MODE);
  } catch (error) {
    if (!(error instanceof Deno.errors.PermissionDenied)) throw error;
    console.warn(
      `Packice: data directory ${path} is mode 0${(mode & 0o777).toString(8)}, readable by ` +
        `other users, and cannot be made 0700: ${error.message}`,
    );
  }
}
