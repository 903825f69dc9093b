/**
 * The one place where a negative return of the native library becomes an
 * error: {@link check}.
 *
 * @module
 */
import { CapacityExceededError, InternalError, InvalidArgumentError } from "../core/errors.ts";
import type { PackiceError } from "../core/errors.ts";

/** Linux errno numbers (x86-64 and arm64) that Packice names or acts on. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EPIPE: 32,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
} as const;

/** One of the numbers in {@link Errno}. */
export type Errno = typeof Errno[keyof typeof Errno];

const names = new Map<number, string>(Object.entries(Errno).map(([name, value]) => [value, name]));

/**
 * The symbolic name of an errno number, such as `"ENOMEM"`, or `"errno 75"` for
 * one not in {@link Errno}.
 *
 * @param errno A positive errno number.
 * @returns Its name.
 */
export function errnoName(errno: number): string {
  return names.get(errno) ?? `errno ${errno}`;
}

/**
 * The system error behind a {@link PackiceError} thrown by {@link check}; it is
 * the error's `cause`, so callers can still branch on the exact errno.
 */
export class SystemError extends Error {
  /** The positive errno number. */
  readonly errno: number;
  /** The operation that failed, such as `"mmap"`. */
  readonly operation: string;
  /** The errno's name, such as `"ENOSPC"`, as Deno's file system errors carry it. */
  readonly code: string;

  /**
   * Describes a failed system call.
   *
   * @param operation The operation that failed.
   * @param errno The positive errno number.
   */
  constructor(operation: string, errno: number) {
    super(`${operation} failed: ${errnoName(errno)} (${errno})`);
    this.name = "SystemError";
    this.errno = errno;
    this.operation = operation;
    this.code = errnoName(errno);
  }
}

/**
 * Returns a native result that is not negative, as a number, and throws for
 * `-errno`: ENOMEM and ENOSPC become {@link CapacityExceededError}, and so do
 * EMFILE and ENFILE (a memfd per object runs into the limit of open files),
 * EINVAL and EBADF {@link InvalidArgumentError}, anything else
 * {@link InternalError}. The
 * message names the errno, such as `"mmap failed: ENOMEM (12)"`, and the
 * `cause` is a {@link SystemError} carrying the number.
 *
 * @param result What the native function returned.
 * @param operation The operation, for the message, such as `"mmap"`.
 * @returns The result as a number.
 * @throws {PackiceError} When the result is negative.
 *
 * @example
 * ```ts ignore
 * import { check } from "./errno.ts";
 * import { loadNative } from "./load.ts";
 * const native = loadNative();
 * if (native) {
 *   const fd = check(native.symbols.pk_eventfd(), "eventfd");
 *   check(native.symbols.pk_close(fd), "close");
 * }
 * ```
 */
export function check(result: number | bigint, operation: string): number {
  const value = Number(result);
  if (value >= 0) return value;
  throw errnoError(-value, operation);
}

/**
 * The typed error for an errno, as {@link check} throws it.
 *
 * @param errno The positive errno number.
 * @param operation The operation that failed.
 * @returns A {@link PackiceError} whose cause is a {@link SystemError}.
 */
export function errnoError(errno: number, operation: string): PackiceError {
  const cause = new SystemError(operation, errno);
  switch (errno) {
    case Errno.ENOMEM:
    case Errno.ENOSPC:
    case Errno.EMFILE:
    case Errno.ENFILE:
      return new CapacityExceededError(cause.message, { cause });
    case Errno.EINVAL:
    case Errno.EBADF:
      return new InvalidArgumentError(cause.message, { cause });
    default:
      return new InternalError(cause.message, { cause });
  }
}
