/**
 * The error family every Packice peer, backend and transport throws.
 *
 * Each class carries a stable {@link ErrorCode}; transports send the code and
 * message across the wire and {@link errorFromCode} rebuilds the same class on
 * the other side, so a caller sees one error whichever peer it talks to.
 *
 * @module
 */

/** Stable machine-readable codes of {@link PackiceError}. */
export const ErrorCode = {
  NOT_FOUND: "NOT_FOUND",
  ALREADY_EXISTS: "ALREADY_EXISTS",
  NOT_SEALED: "NOT_SEALED",
  ALREADY_SEALED: "ALREADY_SEALED",
  LEASE_EXPIRED: "LEASE_EXPIRED",
  UNKNOWN_LEASE: "UNKNOWN_LEASE",
  WRONG_ACCESS: "WRONG_ACCESS",
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  CAPACITY_EXCEEDED: "CAPACITY_EXCEEDED",
  NATIVE_UNAVAILABLE: "NATIVE_UNAVAILABLE",
  STORE_UNAVAILABLE: "STORE_UNAVAILABLE",
  UNAUTHORIZED: "UNAUTHORIZED",
  PROTOCOL: "PROTOCOL",
  UNSUPPORTED: "UNSUPPORTED",
  CLOSED: "CLOSED",
  INTERNAL: "INTERNAL",
  CONFLICT: "CONFLICT",
} as const;

/** One of the stable error codes. */
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/**
 * Base class of every error Packice throws on purpose.
 *
 * @example Branch on the code
 * ```ts
 * import { connect, PackiceError } from "@packice/packice";
 * await using client = await connect();
 * try {
 *   await client.get("missing");
 * } catch (error) {
 *   if (error instanceof PackiceError) console.log(error.code); // "NOT_FOUND"
 * }
 * ```
 */
export class PackiceError extends Error {
  /** The stable code of this error. */
  readonly code: ErrorCode;

  /**
   * Creates the error.
   *
   * @param code The stable code.
   * @param message What went wrong, in sentence case, detail after a colon.
   * @param options Standard error options, such as `cause`.
   */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** The wire form of this error: `{ code, message }`. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** No object (or no lease holder) exists under the given id. */
export class NotFoundError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message What was not found.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.NOT_FOUND, message, options);
  }
}

/** CREATE of an id that is already taken, by a sealed object or one being created. */
export class AlreadyExistsError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message Which id exists.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.ALREADY_EXISTS, message, options);
  }
}

/** READ of an object that is still being created. */
export class NotSealedError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message Which object is unsealed.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.NOT_SEALED, message, options);
  }
}

/** A write to, or second seal of, an object that is already sealed. */
export class AlreadySealedError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message Which object is sealed.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.ALREADY_SEALED, message, options);
  }
}

/** A lease whose TTL has passed. */
export class LeaseExpiredError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message Which lease expired.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.LEASE_EXPIRED, message, options);
  }
}

/** A lease id the peer never issued, or one already released. */
export class UnknownLeaseError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message Which lease is unknown.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.UNKNOWN_LEASE, message, options);
  }
}

/** An operation the lease's access does not allow, such as seal with a READ lease. */
export class WrongAccessError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message What was refused and why.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.WRONG_ACCESS, message, options);
  }
}

/** A malformed id, metadata, size, offset or option. */
export class InvalidArgumentError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message Which argument is wrong and how.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.INVALID_ARGUMENT, message, options);
  }
}

/** The peer has no room left for the requested bytes. */
export class CapacityExceededError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message How much was asked and how much is free.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.CAPACITY_EXCEEDED, message, options);
  }
}

/** The native library could not be loaded, so zero-copy sharing between processes is off. */
export class NativeUnavailableError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message Why the library is unavailable.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.NATIVE_UNAVAILABLE, message, options);
  }
}

/**
 * A daemon, or the store it keeps leases in (Redis), cannot be reached right
 * now: nothing listens at the address, or it does not answer in time. Never
 * NOT_FOUND, so code that treats NOT_FOUND as a miss does not take "daemon
 * down" for one.
 */
export class StoreUnavailableError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message What could not be reached.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.STORE_UNAVAILABLE, message, options);
  }
}

/** A missing or wrong auth token. */
export class UnauthorizedError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message Why the request was refused.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.UNAUTHORIZED, message, options);
  }
}

/** A malformed, oversized or unknown message on a transport. */
export class ProtocolError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message What was wrong with the message.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.PROTOCOL, message, options);
  }
}

/** A request this peer or its store cannot serve, such as memfds offered to a store on disk. */
export class UnsupportedError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message What is not supported.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.UNSUPPORTED, message, options);
  }
}

/** Use of a client, peer, server or handle after `close()`. */
export class ClosedError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message What was closed.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.CLOSED, message, options);
  }
}

/** A failure inside the peer that is not the caller's doing. */
export class InternalError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.INTERNAL, message, options);
  }
}

/**
 * Another content is recorded under the id: a directory refuses to list a
 * holder of other bytes under the same id.
 */
export class ConflictError extends PackiceError {
  /**
   * Creates the error.
   *
   * @param message Which id, and which digests disagree.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.CONFLICT, message, options);
  }
}

const classes: Record<ErrorCode, new (message: string) => PackiceError> = {
  NOT_FOUND: NotFoundError,
  ALREADY_EXISTS: AlreadyExistsError,
  NOT_SEALED: NotSealedError,
  ALREADY_SEALED: AlreadySealedError,
  LEASE_EXPIRED: LeaseExpiredError,
  UNKNOWN_LEASE: UnknownLeaseError,
  WRONG_ACCESS: WrongAccessError,
  INVALID_ARGUMENT: InvalidArgumentError,
  CAPACITY_EXCEEDED: CapacityExceededError,
  NATIVE_UNAVAILABLE: NativeUnavailableError,
  STORE_UNAVAILABLE: StoreUnavailableError,
  UNAUTHORIZED: UnauthorizedError,
  PROTOCOL: ProtocolError,
  UNSUPPORTED: UnsupportedError,
  CLOSED: ClosedError,
  INTERNAL: InternalError,
  CONFLICT: ConflictError,
};

/**
 * Rebuilds the error class for a code received from a transport.
 *
 * @param code The code on the wire; an unknown code gives an {@link InternalError}.
 * @param message The message on the wire.
 * @returns The matching {@link PackiceError} subclass instance.
 *
 * @example
 * ```ts
 * import { errorFromCode, NotFoundError } from "@packice/packice";
 * const error = errorFromCode("NOT_FOUND", "No object: abc");
 * console.log(error instanceof NotFoundError); // true
 * ```
 */
export function errorFromCode(code: string, message: string): PackiceError {
  const ErrorClass = classes[code as ErrorCode] ?? InternalError;
  return new ErrorClass(message);
}

/**
 * Turns anything thrown into a {@link PackiceError}, keeping Packice errors as
 * they are and wrapping the rest as {@link InternalError} with the cause.
 *
 * @param error The thrown value.
 * @returns A Packice error.
 */
export function asPackiceError(error: unknown): PackiceError {
  if (error instanceof PackiceError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new InternalError(`Internal error: ${message}`, { cause: error });
}
