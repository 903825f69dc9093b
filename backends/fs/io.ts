import { CapacityExceededError, InternalError } from "../../core/errors.ts";

const noSpaceCodes: ReadonlySet<unknown> = new Set(["ENOSPC", "EDQUOT"]);

/**
 * Turns a full disk or an exceeded quota into a {@link CapacityExceededError},
 * a read-only file system into an {@link InternalError} that says so; returns
 * any other error as it is.
 *
 * @param error What a file system call threw.
 * @param what What was being done, as in "Cannot <what>: no space left on device".
 * @returns The error to throw.
 */
export function fromFsError(error: unknown, what: string): unknown {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  if (noSpaceCodes.has(code)) {
    return new CapacityExceededError(`Cannot ${what}: no space left on device`, { cause: error });
  }
  if (code === "EROFS") {
    return new InternalError(
      `Cannot ${what}: the data directory's file system is read-only: remount it read-write`,
      { cause: error },
    );
  }
  return error;
}

/** Writes all of `bytes` at the file's current position. */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/**
 * Fills `bytes` from the file's current position.
 *
 * @returns False when the file ended first.
 */
export async function readFull(file: Deno.FsFile, bytes: Uint8Array): Promise<boolean> {
  let done = 0;
  while (done < bytes.length) {
    const read = await file.read(bytes.subarray(done));
    if (read === null) return false;
    done += read;
  }
  return true;
}

/** Flushes a directory's entries to disk, so a rename or create in it survives a crash. */
export async function syncDir(path: string): Promise<void> {
  using dir = await Deno.open(path, { read: true });
  await dir.sync();
}

/** Removes a file or directory tree; one already gone is fine. */
export async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
