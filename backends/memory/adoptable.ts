import { InvalidArgumentError } from "../../core/errors.ts";
import { Errno } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import { SIZE_SEALS } from "./seals.ts";

/**
 * Checks that `fd` is a memfd another process may hand over as a blob of
 * `size` bytes, then adds the size seals, so that its writer can no longer
 * cut it under this process's mappings: a sealable memfd (or other shmem
 * file that takes seals) with no seal yet, of exactly that size.
 *
 * @param native The native library.
 * @param fd The descriptor received.
 * @param size The blob's size.
 * @throws {InvalidArgumentError} Saying what is wrong with it.
 */
export function takeAdoptable(native: Native, fd: number, size: number): void {
  const { symbols } = native;
  const seals = symbols.pk_get_seals(fd);
  if (seals === -Errno.EINVAL || seals === -Errno.EBADF) {
    throw new InvalidArgumentError("Cannot take over the fd: not a memfd that takes seals");
  }
  if (seals !== 0) {
    throw new InvalidArgumentError(
      seals < 0
        ? `Cannot take over the memfd: fcntl(F_GET_SEALS) failed with errno ${-seals}`
        : `Cannot take over the memfd: it has seals already (${seals})`,
    );
  }
  const actual = Number(symbols.pk_fstat_size(fd));
  if (actual !== size) {
    throw new InvalidArgumentError(
      `Cannot take over the memfd: its size is ${actual} bytes, not the blob's ${size}`,
    );
  }
  const added = symbols.pk_add_seals(fd, SIZE_SEALS);
  if (added < 0) {
    throw new InvalidArgumentError(
      `Cannot take over the memfd: sealing its size failed, errno ${-added}`,
    );
  }
}
