import { dirname } from "node:path";
import { AlreadyExistsError, InvalidArgumentError } from "../core/errors.ts";

/** An exclusive lock that one daemon holds on its socket path for its lifetime. */
export interface SocketLock extends Disposable {
  /** The lock file: the socket path with `.lock` appended. */
  readonly path: string;
  /** Releases the lock. Idempotent. */
  release(): void;
}

/**
 * Takes the lock of the daemon on `socket`, without waiting: an exclusive
 * `flock` on `<socket>.lock`. The kernel drops it when the holder exits, even
 * by SIGKILL, so a lock file left behind never blocks the next start.
 *
 * @param socket The socket path the daemon is about to serve on.
 * @returns The held lock.
 * @throws {AlreadyExistsError} When another daemon holds the lock.
 * @throws {InvalidArgumentError} When the lock file cannot be made beside the socket.
 *
 * @example Serve on a socket only while holding its lock
 * ```ts ignore
 * using lock = await lockSocket("/run/packice.sock");
 * ```
 */
export async function lockSocket(socket: string): Promise<SocketLock> {
  const path = `${socket}.lock`;
  // The lock file is never removed. Unlinking it on exit would let a daemon that
  // opened the old file before the unlink lock that orphaned inode while the next
  // one creates and locks a new file at the same path: two holders of "the" lock.
  let file;
  try {
    file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? `its directory ${dirname(socket)} does not exist: create it, or`
      : `${path} cannot be created (${(error as Error).message}):`;
    throw new InvalidArgumentError(
      `Cannot listen on ${socket}: ${why} choose another path with --socket`,
      { cause: error },
    );
  }
  let locked;
  try {
    locked = await file.tryLock(true);
  } catch (error) {
    file.close();
    throw error;
  }
  if (!locked) {
    file.close();
    throw new AlreadyExistsError(
      `Cannot listen on ${socket}: another daemon holds the lock ${path}`,
    );
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    file.close();
  };
  return { path, release, [Symbol.dispose]: release };
}
