/**
 * A file written whole or not at all: through a temporary name beside it,
 * renamed over it once written, and removed if the write fails. Readers
 * never see half a file, and nothing already at the path (such as a link
 * someone left in /tmp) is written through. Each layer that writes such a
 * file (the native library's build, the HTTP token file, the files that
 * `getFile` and the CLI write) goes through here.
 *
 * @module
 */

/** A fresh temporary name beside `path`. */
function temporaryBeside(path: string): string {
  return `${path}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
}

/**
 * Writes `path` whole or not at all.
 *
 * @param path The file, replaced if it exists.
 * @param write Writes the whole file at the temporary path it is given.
 */
export async function writeThroughTemporary(
  path: string,
  write: (temporary: string) => Promise<void>,
): Promise<void> {
  const temporary = temporaryBeside(path);
  try {
    await write(temporary);
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/**
 * {@link writeThroughTemporary} without awaiting, for the loader that runs
 * synchronously.
 *
 * @param path The file, replaced if it exists.
 * @param write Writes the whole file at the temporary path it is given.
 */
export function writeThroughTemporarySync(path: string, write: (temporary: string) => void): void {
  const temporary = temporaryBeside(path);
  try {
    write(temporary);
    Deno.renameSync(temporary, path);
  } catch (error) {
    try {
      Deno.removeSync(temporary);
    } catch {
      // The temporary file was never written.
    }
    throw error;
  }
}
