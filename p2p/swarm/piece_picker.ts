/**
 * Which piece a source is asked for next: rarest first among the pieces it
 * has and no one is fetching, counting the copies on their way to partial
 * holders as copies, ties broken at random, so that fetchers of one object
 * spread over its pieces and every piece soon has several holders to relay
 * it. When every missing piece is being fetched, the endgame: a piece
 * fetched by one other source only, for longer than twice the mean piece time
 * so far (a straggler), is asked of this one too, and the first to verify
 * wins. Duplicating only stragglers keeps the endgame's waste to the pieces
 * that would otherwise hold the transfer up.
 *
 * A holder of the whole object is not asked for a piece that a partial holder
 * (a daemon still receiving it) has or has on its way: in a broadcast the
 * first holder then sends each piece about once, and the receivers relay it
 * to each other. Should a piece only on its way stay away for long (its
 * receiver slow, or gone), the whole holder is asked for it when it has
 * nothing else to send.
 *
 * A pick may be a run of pieces that follow the first one, free and as rare,
 * asked in one request: a lone source then pays one round trip per run, not
 * per piece. Each piece of a run is timed from when its own bytes start
 * ({@link PiecePicker.restart}), so the end of a long run is no straggler.
 *
 * @module
 */
import { type Clock, monotonic } from "./clock.ts";

/**
 * How long a piece that partial holders expect, and none has, must have
 * stayed away (at least; else twice the mean piece time) before a whole
 * holder with nothing else to send is asked for it.
 */
const AWAY_MIN_MS = 2000;

/** The pieces a source holds, as {@link PiecePicker.addSource} counts them. */
export interface Holding {
  /** Whether it has a piece. */
  readonly has: (piece: number) => boolean;
  /** Whether it is a partial holder (still receiving the object). */
  readonly partial: boolean;
  /** Whether it has a piece or has it on its way. */
  readonly covers: (piece: number) => boolean;
}

/** What a source asks of the picker. */
export interface Pick {
  /** The piece. */
  readonly piece: number;
  /** Whether another source fetches it already (an endgame duplicate). */
  readonly duplicate: boolean;
  /** Pieces in the run, from `piece` on: 1 for an endgame duplicate. */
  readonly count: number;
}

/** Pieces missing, requested, and how many known sources hold each. */
export class PiecePicker {
  readonly #done: boolean[];
  readonly #requests: number[];
  readonly #holders: number[];
  /** Partial holders that have or expect each piece. */
  readonly #partials: number[];
  /** Partial holders that have each piece. */
  readonly #partialsWith: number[];
  /** Since when each piece has had a partial holder. */
  readonly #coveredAt: number[];
  readonly #started: number[];
  readonly #random: () => number;
  readonly #clock: Clock;
  #missing: number;
  #partialSources = 0;
  /**
   * Ties go to the lowest piece, not a random one: set while a local reader
   * streams the object, whose bytes it can only have in order.
   */
  inOrder = false;
  #pieceMs = 0;
  #timed = 0;
  #version = 0;

  /**
   * Creates a picker with every piece missing.
   *
   * @param count Pieces of the object.
   * @param random Tie breaker in [0, 1). Default `Math.random`.
   * @param clock The time source. Default `performance.now`.
   */
  constructor(count: number, random: () => number = Math.random, clock: Clock = monotonic) {
    this.#done = new Array(count).fill(false);
    this.#requests = new Array(count).fill(0);
    this.#holders = new Array(count).fill(0);
    this.#partials = new Array(count).fill(0);
    this.#partialsWith = new Array(count).fill(0);
    this.#coveredAt = new Array(count).fill(0);
    this.#started = new Array(count).fill(0);
    this.#random = random;
    this.#clock = clock;
    this.#missing = count;
  }

  /** Pieces not verified yet. */
  get missing(): number {
    return this.#missing;
  }

  /**
   * Grows with every change that may give a source a pick it had not: a
   * request ended, a source counted or uncounted. Time passing (stragglers,
   * pieces long away) is not counted: the caller asks again now and then.
   */
  get version(): number {
    return this.#version;
  }

  /** Sources counted as partial holders now. */
  get partialSources(): number {
    return this.#partialSources;
  }

  /** Whether `piece` is verified. */
  done(piece: number): boolean {
    return this.#done[piece] === true;
  }

  /**
   * Counts a source holding the pieces for which `has` is true: all for a
   * full holder, some for a `partial` one, which also `covers` the pieces on
   * their way to it.
   */
  addSource(
    has: (piece: number) => boolean = () => true,
    partial = false,
    covers: (piece: number) => boolean = has,
  ): void {
    this.#count(has, partial, covers, 1);
  }

  /** Uncounts a source added with {@link PiecePicker.addSource}, with the same arguments. */
  removeSource(
    has: (piece: number) => boolean = () => true,
    partial = false,
    covers: (piece: number) => boolean = has,
  ): void {
    this.#count(has, partial, covers, -1);
  }

  /**
   * Counts a source's pieces anew, as {@link PiecePicker.removeSource} then
   * {@link PiecePicker.addSource} would, but a piece that partial holders
   * covered before and after keeps its time away.
   */
  replaceSource(before: Holding, after: Holding): void {
    const since = [...this.#coveredAt];
    const wasCovered = this.#partials.map((count) => count > 0);
    this.#count(before.has, before.partial, before.covers, -1);
    this.#count(after.has, after.partial, after.covers, 1);
    for (let piece = 0; piece < since.length; piece++) {
      if (wasCovered[piece] && this.#partials[piece]! > 0) this.#coveredAt[piece] = since[piece]!;
    }
  }

  #count(
    has: (piece: number) => boolean,
    partial: boolean,
    covers: (piece: number) => boolean,
    by: number,
  ): void {
    this.#version++;
    if (partial) this.#partialSources += by;
    const now = this.#clock();
    for (let piece = 0; piece < this.#holders.length; piece++) {
      if (has(piece)) this.#holders[piece]! += by;
      if (!partial || !covers(piece)) continue;
      if (has(piece)) this.#partialsWith[piece]! += by;
      if (this.#partials[piece] === 0) this.#coveredAt[piece] = now;
      this.#partials[piece]! += by;
    }
  }

  /**
   * The next piece for a source that holds `has` and fetches `mine` already,
   * with up to `run - 1` pieces after it, all marked requested; undefined
   * when there is nothing for it. A `full` holder gets no piece a partial
   * holder has, but in the endgame.
   */
  next(
    has: (piece: number) => boolean,
    mine: ReadonlySet<number>,
    full = false,
    run = 1,
  ): Pick | undefined {
    let best = -1;
    let bestRarity = Infinity;
    let ties = 0;
    let endgame = -1;
    let away = -1;
    const now = this.#clock();
    // Until a piece has verified, nothing counts as a straggler.
    const straggling = this.#timed === 0 ? -Infinity : now - 2 * this.#pieceMs;
    const longAway = now - Math.max(AWAY_MIN_MS, 4 * this.#pieceMs);
    for (let piece = 0; piece < this.#done.length; piece++) {
      if (this.#done[piece] || mine.has(piece) || !has(piece)) continue;
      const requests = this.#requests[piece]!;
      if (requests > 0) {
        // A whole holder duplicates no piece a partial holder covers: it would send it twice.
        const spare = !(full && this.#partials[piece]! > 0);
        if (requests === 1 && endgame < 0 && spare && this.#started[piece]! < straggling) {
          endgame = piece;
        }
        continue;
      }
      if (full && this.#partials[piece]! > 0) {
        const only = this.#partialsWith[piece] === 0;
        if (away < 0 && only && this.#coveredAt[piece]! <= longAway) away = piece;
        continue;
      }
      const rarity = this.#rarity(piece);
      if (rarity < bestRarity) {
        best = piece;
        bestRarity = rarity;
        ties = 1;
      } else if (rarity === bestRarity && !this.inOrder && this.#random() * ++ties < 1) {
        // Reservoir sampling: each tied piece is kept with probability 1/ties.
        best = piece;
      }
    }
    if (best < 0 && away >= 0) {
      best = away;
      bestRarity = this.#rarity(away);
    }
    const piece = best >= 0 ? best : endgame;
    if (piece < 0) return undefined;
    if (this.#requests[piece]!++ === 0) this.#started[piece] = this.#clock();
    if (best < 0) return { piece, duplicate: true, count: 1 };
    let count = 1;
    for (let next = piece + 1; count < run && next < this.#done.length; next++, count++) {
      const free = !this.#done[next] && this.#requests[next] === 0 && !mine.has(next) &&
        has(next) && !(full && this.#partials[next]! > 0) && this.#rarity(next) <= bestRarity;
      if (!free) break;
      this.#requests[next]!++;
      this.#started[next] = this.#clock();
    }
    return { piece, duplicate: false, count };
  }

  /**
   * How many copies of `piece` there are or soon will be: its holders, and
   * the partial holders that have it on its way. Counting those keeps
   * receivers from all asking one relay for the piece it just got while
   * it is already spreading.
   */
  #rarity(piece: number): number {
    return this.#holders[piece]! + this.#partials[piece]! - this.#partialsWith[piece]!;
  }

  /** The bytes of `piece`, requested in a run, start arriving now: its time starts. */
  restart(piece: number): void {
    if (this.#requests[piece]! > 0) this.#started[piece] = this.#clock();
  }

  /** A request for `piece` ended; `verified` when its bytes are in and checked. */
  finish(piece: number, verified: boolean): void {
    this.#version++;
    this.#requests[piece]!--;
    if (verified && !this.#done[piece]) {
      this.#done[piece] = true;
      this.#missing--;
      this.#timed++;
      this.#pieceMs += (this.#clock() - this.#started[piece]! - this.#pieceMs) / this.#timed;
    }
  }
}
