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
 * - at once when a holder of the whole object answered a request since the
 *   last announce: its pieces are now on their way here, and until others
 *   know it they may ask that holder for them too (in a broadcast its
 *   upload is what all wait for, and a piece it sends twice costs them all);
 * - at once when {@link PIECES_PER_ANNOUNCE} pieces verified since the last
 *   announce wait to be told;
 * - else once the oldest change not yet told has waited as long as that
 *   many pieces take to verify here, on the mean so far, within
 *   [{@link TOLD_WITHIN_MS}, {@link TOLD_WITHIN_MAX_MS}].
 *
 * So an announce tells about {@link PIECES_PER_ANNOUNCE} pieces however fast
 * or slow they come (a loaded machine's slow transfer announces no more
 * often per piece than a quick one): a transfer of N pieces announces about
 * N / 4 times, and once more per request a holder of the whole object
 * answered (in a 7-daemon broadcast, a sixth fewer announces than before at
 * low load, a third to a half fewer at load 20-30, where the old count grew
 * with the time taken). The last pieces are not waited for: the seal
 * announces the whole copy at once. Without pushes (others look the entry
 * up every 50 ms) every change is announced, at most every
 * {@link POLLED_GAP_MS}, as before.
 *
 * @module
 */
import { sameBits } from "./bitfield.ts";

/**
 * Verified pieces told in one announce, unless late. A 4 MiB piece takes 21
 * ms on a 200 MB/s link; a receiver of a broadcast lands one every 20-30 ms
 * from its sources together, so four are about 100 ms of news: twice what
 * an announce told before.
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

/** How far a transfer is: pieces verified, and requests a holder of the whole object answered. */
export interface Progress {
  readonly verified: number;
  readonly wholeAnswers: number;
}

/** The announces of one transfer: when the next is due. */
export class AnnouncePace {
  /** The pieces announced last; undefined before the first. */
  #told: Uint8Array | undefined;
  /** Pieces verified at the last announce. */
  #toldVerified = 0;
  /** Requests a holder of the whole object had answered at the last announce. */
  #toldWhole = 0;
  #toldAt = -Infinity;
  /** When a change not yet told was first seen; undefined when none waits. */
  #since: number | undefined;
  /** When the first piece verified was seen. */
  #firstAt: number | undefined;

  /**
   * Milliseconds until `pieces` (the announced bitfields) are due to be
   * announced, seen at `now`: 0 for now, Infinity when there is nothing new
   * to tell. Call it at each change.
   *
   * @param progress Pieces verified so far, and requests a holder of the
   *   whole object answered so far.
   * @param live Whether the directory pushes changes to the other receivers.
   */
  wait(pieces: Uint8Array, progress: Progress, now: number, live: boolean): number {
    const { verified, wholeAnswers } = progress;
    if (verified > 0) this.#firstAt ??= now;
    if (sameBits(pieces, this.#told) || !pieces.some((byte) => byte !== 0)) {
      this.#since = undefined;
      return Infinity;
    }
    if (!live) return Math.max(0, this.#toldAt + POLLED_GAP_MS - now);
    if (this.#told === undefined || (this.#toldVerified === 0 && verified > 0)) return 0;
    if (wholeAnswers > this.#toldWhole) return 0;
    if (verified - this.#toldVerified >= PIECES_PER_ANNOUNCE) return 0;
    this.#since ??= now;
    return Math.max(0, this.#since + this.#within(verified, now) - now);
  }

  /**
   * The progress that makes an announce due at once while pushes are live:
   * the first piece verified, then {@link PIECES_PER_ANNOUNCE} more than
   * told, or any request a holder of the whole object answers (more than
   * `wholeAnswers`); undefined without pushes: only the gap counts.
   */
  due(live: boolean): Progress | undefined {
    if (!live) return undefined;
    return {
      verified: this.#toldVerified === 0 ? 1 : this.#toldVerified + PIECES_PER_ANNOUNCE,
      wholeAnswers: this.#toldWhole,
    };
  }

  /**
   * Whether, with nothing new to tell, only a piece verified or a whole
   * holder's answer need wake the announcer: once something was told and
   * while pushes are live. A relay's pieces coming here are then told with
   * the next of those; before the first announce, or without pushes, every
   * change counts.
   */
  quiet(live: boolean): boolean {
    return live && this.#told !== undefined;
  }

  /** `pieces` are announced at `now`, with `progress` made then. */
  told(pieces: Uint8Array, progress: Progress, now: number): void {
    this.#told = pieces;
    this.#toldVerified = progress.verified;
    this.#toldWhole = progress.wholeAnswers;
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
