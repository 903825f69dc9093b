/**
 * How long one piece may take from request to last byte.
 *
 * @module
 */

/** A piece timeout: `base` ms plus `perMiB` ms for each MiB of the piece. */
export interface PieceTimeout {
  /** Milliseconds any piece gets, for the request's round trip. */
  readonly base: number;
  /** Milliseconds per MiB of the piece. */
  readonly perMiB: number;
}

/**
 * Kraken's 4 s + 4 s per MiB: a 4 MiB piece has 20 s, enough at 1 MiB/s,
 * so only a source far slower than any link a daemon should use times out.
 */
export const DEFAULT_PIECE_TIMEOUT: PieceTimeout = { base: 4000, perMiB: 4000 };

/**
 * The milliseconds a piece of `bytes` may take.
 *
 * @example
 * ```ts ignore
 * pieceDeadline(4 << 20); // 20000
 * ```
 */
export function pieceDeadline(
  bytes: number,
  timeout: PieceTimeout = DEFAULT_PIECE_TIMEOUT,
): number {
  return timeout.base + timeout.perMiB * bytes / (1 << 20);
}
