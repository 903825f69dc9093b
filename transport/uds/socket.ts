import { StoreUnavailableError, UnauthorizedError } from "../../core/errors.ts";
import { Errno, errnoError } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";

const encoder = new TextEncoder();

/**
 * Connects a non-blocking `SOCK_SEQPACKET` socket to `path`.
 *
 * @returns The socket, or `-errno` (`-EAGAIN` when the server's backlog is full).
 */
export function connectSocket(native: Native, path: string): number {
  return native.symbols.pk_uds_connect(encoder.encode(`${path}\0`));
}

/**
 * Connects to `path`, trying again with a growing pause while the server's
 * backlog is full, until `timeout` milliseconds have passed.
 *
 * @returns The connected non-blocking socket.
 * @throws {StoreUnavailableError} When nothing listens on `path`.
 * @throws {UnauthorizedError} When the socket's mode does not let this user connect.
 */
export async function connectRetrying(
  native: Native,
  path: string,
  timeout: number,
): Promise<number> {
  const deadline = Date.now() + timeout;
  let delay = 1;
  for (;;) {
    const fd = connectSocket(native, path);
    if (fd >= 0) return fd;
    const errno = -fd;
    if (errno === Errno.ENOENT || errno === Errno.ECONNREFUSED) {
      throw new StoreUnavailableError(
        `Cannot connect to ${path}: no daemon listens there: start one with \`packice serve\``,
      );
    }
    if (errno === Errno.EACCES || errno === Errno.EPERM) {
      throw new UnauthorizedError(`Cannot connect to ${path}: permission denied`);
    }
    if (errno !== Errno.EAGAIN || Date.now() >= deadline) {
      throw errnoError(errno, `connect to ${path}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 50);
  }
}
