/**
 * When a receiving daemon tells the directory the pieces it has (and has
 * coming) again. Each announce is a directory call and, while the directory
 * pushes changes, a push to every other receiver of the object, each one
 * wake of its event loop: in a broadcast to 7 daemons a receiver was woken
 * about 235 times for 64 pieces when each daemon announced every 50 ms.
 *
 * With pushes live, an announce goes out:
 * - at once for the first pieces on their way, and for the first piece
 *   verified: others leave the first to this daemon, and it is a relay from
 *   its first piece on;
 * - at once when {@link PIECES_PER_ANNOUNCE} pieces verified since the last
 *   announce wait to be told;
 * - else {@link TOLD_WITHIN_MS} after the oldest change not yet told.
 *
 * The last piece is not waited for: the seal announces the whole copy.
 * Without pushes (others look the entry up every 50 ms) every change is
 * announced, at most every {@link POLLED_GAP_MS}, as before.
 *
 * @module
 */
import { sameBits } from "./bitfield.ts";

/**
 * Verified pieces told in one announce at the most, unless late: four
 * pieces are 84 ms of one 200 MB/s link's time for 4 MiB pieces, the time a
 * receiver pulling from several sources takes to land about 3 to 4 of them.
 */
export const PIECES_PER_ANNOUNCE = 4;
/**
 * The longest a change waits to be told while pushes are live: five piece
 * times of a 4 MiB piece at 200 MB/s (21 ms). A relay found this much later
 * costs the broadcast's tail at most this once per hop; twice the 50 ms the
 * announces kept before, for about half as many of them.
 */
export const TOLD_WITHIN_MS = 100;
/**
 * The least time between two announces without pushes: others learn of a
 * change from a lookup (every 50 ms) after it, so it is told sooner.
 */
export const POLLED_GAP_MS = 20;

/** The announces of one transfer: when the next is due. */
export class AnnouncePace {
  /** The pieces announced last; undefined before the first. */
  #told: Uint8Array | undefined;
  /** Pieces verified at the last announce. */
  #toldVerified = 0;
  #toldAt = -Infinity;
  /** When a change not yet told was first seen; undefined when none waits. */
  #since: number | undefined;

  /**
   * Milliseconds until `pieces` (the announced bitfields, with `verified`
   * pieces verified) are due to be announced, seen at `now`: 0 for now,
   * Infinity when there is nothing new to tell. Call it at each change.
   *
   * @param live Whether the directory pushes changes to the other receivers.
   */
  wait(pieces: Uint8Array, verified: number, now: number, live: boolean): number {
    if (sameBits(pieces, this.#told) || !pieces.some((byte) => byte !== 0)) {
      this.#since = undefined;
      return Infinity;
    }
    if (!live) return Math.max(0, this.#toldAt + POLLED_GAP_MS - now);
    if (this.#told === undefined || (this.#toldVerified === 0 && verified > 0)) return 0;
    if (verified - this.#toldVerified >= PIECES_PER_ANNOUNCE) return 0;
    this.#since ??= now;
    return Math.max(0, this.#since + TOLD_WITHIN_MS - now);
  }

  /** `pieces`, with `verified` pieces verified, are announced at `now`. */
  told(pieces: Uint8Array, verified: number, now: number): void {
    this.#told = pieces;
    this.#toldVerified = verified;
    this.#toldAt = now;
    this.#since = undefined;
  }
}
