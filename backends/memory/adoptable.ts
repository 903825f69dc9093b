import { InvalidArgumentError } from "../../core/errors.ts";
import { Errno, errnoName } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import type { Native } from "../../native/load.ts";
import { SIZE_SEALS } from "./seals.ts";

/** Seals that leave the daemon unable to seal the blob itself, or that its writer has sealed already. */
const TAKEN_SEALS = Linux.F_SEAL_SEAL | Linux.F_SEAL_WRITE | Linux.F_SEAL_FUTURE_WRITE;

/**
 * Takes over `fd`, which another process hands over as a blob of `size`
 * bytes: a memfd (a sealable file of shared memory) opened read-write, of
 * exactly that size, with no seal yet.
 *
 * The size seals go on first and everything is checked after: the sender
 * still holds the memfd and may cut it, grow it or seal it at any moment,
 * and a memfd shorter than its blob kills whoever reads past its end with
 * SIGBUS. Once sealed, its size can no longer change; its seals can only
 * grow, and a seal added later is met at seal time (see `AdoptedSeal`).
 *
 * @param native The native library.
 * @param fd The descriptor received.
 * @param size The blob's size.
 * @throws {InvalidArgumentError} Saying what is wrong with it.
 */
export function takeAdoptable(native: Native, fd: number, size: number): void {
  const { symbols } = native;
  // Only a filter: a memfd of a blob of this daemon's has its size seals, and stays its own.
  const before = symbols.pk_get_seals(fd);
  if (before === -Errno.EINVAL || before === -Errno.EBADF) {
    throw new InvalidArgumentError("Cannot take over the fd: not a memfd that takes seals");
  }
  if (before < 0 || before & (TAKEN_SEALS | SIZE_SEALS)) {
    throw new InvalidArgumentError(
      before < 0
        ? `Cannot take over the memfd: fcntl(F_GET_SEALS) failed with ${errnoName(-before)}`
        : `Cannot take over the memfd: it has seals already (${before})`,
    );
  }
  const added = symbols.pk_add_seals(fd, SIZE_SEALS);
  if (added < 0) {
    throw new InvalidArgumentError(
      added === -Errno.EPERM
        ? "Cannot take over the memfd: it is not open for writing, or takes no more seals"
        : `Cannot take over the memfd: sealing its size failed with ${errnoName(-added)}`,
    );
  }
  // Memfds of huge pages take seals too, but fault and unmap by other rules.
  const type = Number(symbols.pk_fstatfs_type(fd));
  if (type !== Linux.TMPFS_MAGIC) {
    throw new InvalidArgumentError(
      `Cannot take over the memfd: not in shared memory (file system type 0x${type.toString(16)})`,
    );
  }
  const seals = symbols.pk_get_seals(fd);
  if (seals < 0 || seals & TAKEN_SEALS) {
    throw new InvalidArgumentError(
      seals < 0
        ? `Cannot take over the memfd: fcntl(F_GET_SEALS) failed with ${errnoName(-seals)}`
        : `Cannot take over the memfd: it was sealed meanwhile (seals ${seals})`,
    );
  }
  const actual = Number(symbols.pk_fstat_size(fd));
  if (actual !== size) {
    throw new InvalidArgumentError(
      `Cannot take over the memfd: its size is ${actual} bytes, not the blob's ${size}`,
    );
  }
}
