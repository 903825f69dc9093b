/**
 * When a receiving daemon tells the directory again the pieces it has (and
 * has coming). Each announce is a directory call and, while the directory
 * pushes changes, a push to every other receiver of the object: one wake
 * of its event loop each. Announced as soon as they changed, at most every
 * 50 ms, a 7-daemon broadcast of 64 pieces cost each receiver 20-30
 * announces and 160-240 pushes, most of them telling one or two pieces.
 *
 * With pushes live, an announce goes out:
 * - at once for the first pieces on their way, and for the first piece
 *   verified: others leave the first to this daemon, and it is a relay from
 *   its first piece on;
 * - at once when {@link PIECES_PER_ANNOUNCE} pieces verified since the last
 *   announce wait to be told;
 * - else once the oldest change not yet told has waited as long as that
 *   many pieces take to verify here, on the mean so far, within
 *   [{@link TOLD_WITHIN_MS}, {@link TOLD_WITHIN_MAX_MS}].
 *
 * So an announce tells about {@link PIECES_PER_ANNOUNCE} pieces however fast
 * or slow they come (a loaded machine's slow transfer announces no more
 * often per piece than a quick one), and the announces of a transfer of N
 * pieces stay near N / 4. The last pieces are not waited for: the seal
 * announces the whole copy at once. Pieces on their way here told 100 ms or
 * so later than before need cost no second copy from a holder of the whole
 * object: it answers 503 to a range asked again while it sends it, or
 * shortly after (`transport/http/repeat_guard.ts`). Without pushes (others
 * look the entry up every 50 ms) every change is announced, at most every
 * {@link POLLED_GAP_MS}, as before.
 *
 * @module
 */
import { sameBits } from "./bitfield.ts";

/**
 * Verified pieces told in one announce, unless late. A 4 MiB piece takes 21
 * ms on a 200 MB/s link; a receiver of a broadcast lands one every 20-30 ms
 * from its sources together, so four are about 100 ms of news: twice what
 * an announce told before, for about half as many announces and pushes.
 */
export const PIECES_PER_ANNOUNCE = 4;
/**
 * The least a change not yet told waits for more to join it: four piece
 * times at 200 MB/s and 4 MiB pieces (84 ms), rounded up. A relay found this
 * much later costs the broadcast's tail about this once per hop; the tail
 * had 0.2-0.3 s to spare at 1.5x a point-to-point transfer.
 */
export const TOLD_WITHIN_MS = 100;
/**
 * The longest a change waits to be told, however slowly pieces verify: a
 * receiver whose pieces on their way are told late may see a holder of the
 * whole object asked for one of them by another.
 */
export const TOLD_WITHIN_MAX_MS = 1000;
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
  /** When the first piece verified was seen. */
  #firstAt: number | undefined;

  /**
   * Milliseconds until `pieces` (the announced bitfields, with `verified`
   * pieces verified) are due to be announced, seen at `now`: 0 for now,
   * Infinity when there is nothing new to tell. Call it at each change.
   *
   * @param live Whether the directory pushes changes to the other receivers.
   */
  wait(pieces: Uint8Array, verified: number, now: number, live: boolean): number {
    if (verified > 0) this.#firstAt ??= now;
    if (sameBits(pieces, this.#told) || !pieces.some((byte) => byte !== 0)) {
      this.#since = undefined;
      return Infinity;
    }
    if (!live) return Math.max(0, this.#toldAt + POLLED_GAP_MS - now);
    if (this.#told === undefined || (this.#toldVerified === 0 && verified > 0)) return 0;
    if (verified - this.#toldVerified >= PIECES_PER_ANNOUNCE) return 0;
    this.#since ??= now;
    return Math.max(0, this.#since + this.#within(verified, now) - now);
  }

  /**
   * Pieces verified that make an announce due at once while pushes are live
   * (the first, then {@link PIECES_PER_ANNOUNCE} more than told); without
   * them, Infinity: only the gap counts.
   */
  verifiedDue(live: boolean): number {
    if (!live) return Infinity;
    return this.#toldVerified === 0 ? 1 : this.#toldVerified + PIECES_PER_ANNOUNCE;
  }

  /**
   * Whether, with nothing new to tell, only a piece verified need wake the
   * announcer: once something was told and while pushes are live. Pieces
   * coming here are then told with the next piece verified; before the first
   * announce, or without pushes, every change counts.
   */
  quiet(live: boolean): boolean {
    return live && this.#told !== undefined;
  }

  /** `pieces`, with `verified` pieces verified, are announced at `now`. */
  told(pieces: Uint8Array, verified: number, now: number): void {
    this.#told = pieces;
    this.#toldVerified = verified;
    this.#toldAt = now;
    this.#since = undefined;
  }

  /** How long a change may wait to be told now (see the module's rules). */
  #within(verified: number, now: number): number {
    if (verified < 2 || this.#firstAt === undefined) return TOLD_WITHIN_MS;
    const interval = (now - this.#firstAt) / (verified - 1);
    return Math.min(TOLD_WITHIN_MAX_MS, Math.max(TOLD_WITHIN_MS, PIECES_PER_ANNOUNCE * interval));
  }
}
