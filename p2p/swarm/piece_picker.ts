/**
 * Which piece a source is asked for next: rarest first among the pieces it
 * has and no one is fetching, ties broken at random, so that fetchers of one
 * object spread over its pieces and every piece soon has several holders to
 * relay it. When every missing piece is being fetched, the endgame: a piece
 * fetched by one other source only, for longer than twice the mean piece time
 * so far (a straggler), is asked of this one too, and the first to verify
 * wins. Duplicating only stragglers keeps the endgame's waste to the pieces
 * that would otherwise hold the transfer up.
 *
 * A holder of the whole object is not asked for a piece that a partial holder
 * (a daemon still receiving it) has: in a broadcast the first holder then
 * sends each piece about once, and the receivers relay it to each other.
 *
 * @module
 */
import { type Clock, monotonic } from "./clock.ts";

/** What a source asks of the picker. */
export interface Pick {
  /** The piece. */
  readonly piece: number;
  /** Whether another source fetches it already (an endgame duplicate). */
  readonly duplicate: boolean;
}

/** Pieces missing, requested, and how many known sources hold each. */
export class PiecePicker {
  readonly #done: boolean[];
  readonly #requests: number[];
  readonly #holders: number[];
  readonly #partials: number[];
  readonly #started: number[];
  readonly #random: () => number;
  readonly #clock: Clock;
  #missing: number;
  /**
   * Ties go to the lowest piece, not a random one: set while a local reader
   * streams the object, whose bytes it can only have in order.
   */
  inOrder = false;
  #pieceMs = 0;
  #timed = 0;

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
    this.#started = new Array(count).fill(0);
    this.#random = random;
    this.#clock = clock;
    this.#missing = count;
  }

  /** Pieces not verified yet. */
  get missing(): number {
    return this.#missing;
  }

  /** Whether `piece` is verified. */
  done(piece: number): boolean {
    return this.#done[piece] === true;
  }

  /**
   * Counts a source holding the pieces for which `has` is true: all for a
   * full holder, some for a `partial` one.
   */
  addSource(has: (piece: number) => boolean = () => true, partial = false): void {
    this.#count(has, partial, 1);
  }

  /** Uncounts a source added with {@link PiecePicker.addSource}. */
  removeSource(has: (piece: number) => boolean = () => true, partial = false): void {
    this.#count(has, partial, -1);
  }

  #count(has: (piece: number) => boolean, partial: boolean, by: number): void {
    for (let piece = 0; piece < this.#holders.length; piece++) {
      if (!has(piece)) continue;
      this.#holders[piece]! += by;
      if (partial) this.#partials[piece]! += by;
    }
  }

  /**
   * The next piece for a source that holds `has` and fetches `mine` already,
   * marked requested; undefined when there is nothing for it. A `full`
   * holder gets no piece a partial holder has, but in the endgame.
   */
  next(has: (piece: number) => boolean, mine: ReadonlySet<number>, full = false): Pick | undefined {
    let best = -1;
    let bestRarity = Infinity;
    let ties = 0;
    let endgame = -1;
    // Until a piece has verified, nothing counts as a straggler.
    const straggling = this.#timed === 0 ? -Infinity : this.#clock() - 2 * this.#pieceMs;
    for (let piece = 0; piece < this.#done.length; piece++) {
      if (this.#done[piece] || mine.has(piece) || !has(piece)) continue;
      const requests = this.#requests[piece]!;
      if (requests > 0) {
        if (requests === 1 && endgame < 0 && this.#started[piece]! < straggling) endgame = piece;
        continue;
      }
      if (full && this.#partials[piece]! > 0) continue;
      const rarity = this.#holders[piece]!;
      if (rarity < bestRarity) {
        best = piece;
        bestRarity = rarity;
        ties = 1;
      } else if (rarity === bestRarity && !this.inOrder && this.#random() * ++ties < 1) {
        // Reservoir sampling: each tied piece is kept with probability 1/ties.
        best = piece;
      }
    }
    const piece = best >= 0 ? best : endgame;
    if (piece < 0) return undefined;
    if (this.#requests[piece]!++ === 0) this.#started[piece] = this.#clock();
    return { piece, duplicate: best < 0 };
  }

  /** A request for `piece` ended; `verified` when its bytes are in and checked. */
  finish(piece: number, verified: boolean): void {
    this.#requests[piece]!--;
    if (verified && !this.#done[piece]) {
      this.#done[piece] = true;
      this.#missing--;
      this.#timed++;
      this.#pieceMs += (this.#clock() - this.#started[piece]! - this.#pieceMs) / this.#timed;
    }
  }
}
