/**
 * Why a transfer gave up a source.
 *
 * @module
 */
import type { Holder } from "./directory.ts";

/**
 * Why a source was given up: it could not be reached or was cut off, it
 * answered 404 (it does not hold the object), another unexpected status, a
 * wrong length, bytes that do not match their digest, too late (the piece
 * timeout), far slower than its own mean, or busy (503: all its upload slots
 * taken, or a partial holder without the piece yet; asked again shortly).
 */
export type SourceFault =
  | "unreachable"
  | "missing"
  | "status"
  | "length"
  | "digest"
  | "timeout"
  | "slow"
  | "busy";

/** A source that could not supply its pieces; the transfer goes on with another. */
export class SourceError extends Error {
  /** What went wrong. */
  readonly fault: SourceFault;
  /** The holder. */
  readonly holder: Holder;

  /**
   * Creates the error.
   *
   * @param fault What went wrong.
   * @param holder The holder.
   * @param message Detail.
   * @param options Standard error options, such as `cause`.
   */
  constructor(fault: SourceFault, holder: Holder, message: string, options?: ErrorOptions) {
    super(`Holder ${holder.node} at ${holder.address}: ${message}`, options);
    this.fault = fault;
    this.holder = holder;
  }
}

/** The key a holder is blocked and counted under: its node and address. */
export function sourceKey(holder: Holder): string {
  return `${holder.node} ${holder.address}`;
}

/**
 * Whether a fault puts the source on the blocklist: bad bytes, a timeout, a
 * stall. A source that is unreachable or lacks the object is withdrawn instead.
 */
export function blocks(fault: SourceFault): boolean {
  return fault === "digest" || fault === "timeout" || fault === "slow";
}
