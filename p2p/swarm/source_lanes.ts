/**
 * The requests of a transfer's sources: each source gets a few lanes, each
 * lane asks the {@link PiecePicker} for its next pick and fetches it in one
 * request, and each piece is checked against its digest as it lands, on
 * another thread, while the request reads on. A piece verified stops every
 * other request for it (the endgame's losers); a source whose bytes do not
 * verify, or that falls far behind its own mean, fails; a 503 sends the lane
 * to wait briefly and ask again.
 *
 * @module
 */
import type { ContentRecord, Holder } from "../directory.ts";
import { SourceError } from "../source_error.ts";
import { sleep, type TokenBucket } from "../../transport/rate_limit.ts";
import { hasPiece, isComing } from "./bitfield.ts";
import type { Landing } from "./landing.ts";
import type { Holding, Pick, PiecePicker } from "./piece_picker.ts";
import { checkPiece, requestPieces } from "./piece_request.ts";
import type { PieceTimeout } from "./piece_timeout.ts";
import type { RangeClient } from "./range_client.ts";
import { SourceSpeed } from "./source_speed.ts";
import type { Reservation, TransferBudget } from "./transfer_budget.ts";

/** A holder a transfer is fetching from. */
export interface Source {
  readonly holder: Holder;
  /** Aborted when it is given up. */
  readonly stop: AbortController;
  /** The pieces requested of it and not settled yet. */
  readonly mine: Set<number>;
  readonly speed: SourceSpeed;
  /** The pieces a partial holder has, as last listed; undefined for a whole copy. */
  pieces: Uint8Array | undefined;
  /** Whether the source has a piece (of `pieces`). */
  readonly has: (piece: number) => boolean;
  /** Whether it has a piece or has it on its way (of `pieces`). */
  readonly covers: (piece: number) => boolean;
  /** Checks of its pieces under way. */
  readonly checks: Set<Promise<void>>;
  /** Its requests under way. */
  requesting: number;
  /** Its lanes waiting for one of its requests to end (at its {@link Source.limit}). */
  spread: number;
  /**
   * Whether one of its lanes waits for the picker to change: the others wait
   * for their turn ({@link Source.turn}), as all of its lanes would pick alike.
   */
  watching: boolean;
  /** Settles when the lane watching found a pick or ended: the next lane looks. */
  turn: PromiseWithResolvers<void> | undefined;
  /** Its requests it answered and is sending now. */
  sending: number;
  /**
   * The most requests to have under way with it: after a 503 (busy), as many
   * as it was sending then, at least one. Unbounded at first.
   */
  limit: number;
  /** Its busy answers (503) in a row: each doubles the wait before it is asked again, up to 4x. */
  busy: number;
  /** Why it is given up, once it is. */
  failure: SourceError | undefined;
  /**
   * The picker's version and the lanes' ticks when a lane of it last found
   * nothing to pick: until either moves on, nothing is there.
   */
  futile: number;
}

/** A fresh source for `holder` of an object of `count` pieces. */
export function sourceOf(holder: Holder, count: number): Source {
  const source: Source = {
    holder,
    stop: new AbortController(),
    mine: new Set(),
    speed: new SourceSpeed(),
    pieces: holder.pieces,
    has: (piece) => source.pieces === undefined || hasPiece(source.pieces, piece),
    covers: (piece) =>
      source.has(piece) || (source.pieces !== undefined && isComing(source.pieces, count, piece)),
    checks: new Set(),
    requesting: 0,
    spread: 0,
    watching: false,
    turn: undefined,
    sending: 0,
    limit: Infinity,
    busy: 0,
    failure: undefined,
    futile: -1,
  };
  return source;
}

/** Wakes the lanes of `source` waiting for their turn to look for a pick. */
function turn(source: Source): void {
  source.turn?.resolve();
  source.turn = undefined;
}

/** What a holder listed with `pieces` holds of an object of `count` pieces. */
export function holdingOf(pieces: Uint8Array | undefined, count: number): Holding {
  if (pieces === undefined) return { has: () => true, covers: () => true, partial: false };
  return {
    has: (piece) => hasPiece(pieces, piece),
    covers: (piece) => hasPiece(pieces, piece) || isComing(pieces, count, piece),
    partial: true,
  };
}

/** What the lanes of one transfer share. */
export interface LanesOptions {
  readonly record: ContentRecord;
  /** Where pieces land. */
  readonly landing: Landing;
  readonly picker: PiecePicker;
  readonly client: RangeClient;
  readonly token?: string | undefined;
  /** Requests in flight per source. Default 3. */
  readonly inFlight?: number | undefined;
  readonly pieceTimeout?: PieceTimeout | undefined;
  /** The download rate limit. */
  readonly rate?: TokenBucket | undefined;
  /** Called with the bytes of each chunk as it lands. */
  readonly onBytes?: ((bytes: number) => void) | undefined;
  /** Called when a holder's piece port did not answer (its pieces are asked at its address). */
  readonly onPiecePortUnreachable?: ((holder: Holder, reason: string) => void) | undefined;
  /** Where endgame scratch pieces take their bytes from. */
  readonly budget?: TransferBudget | undefined;
  /** Sources running now. */
  readonly sources: () => number;
  /** A piece is verified (the picker knows already). */
  readonly verified: (piece: number) => void;
  /** Called as a holder of the whole object answers a request (see {@link Lanes.wholeAnswers}). */
  readonly wholeAnswered?: () => void;
  /** An error that is no source's fault: the transfer is to end. */
  readonly broken: (error: unknown) => void;
}

/**
 * Why a request or a source is stopped: one reason for all of them, since
 * none is read, where an `abort()` without one makes a `DOMException`
 * (and its stack) each time: a broadcast stops many requests, the endgame's
 * losers and each source's at its end.
 */
export const STOPPED: DOMException = new DOMException("The transfer stopped it", "AbortError");

/** How long a lane waits after a 503 before asking its source again (jittered). */
const BUSY_BACKOFF_MS = 150;

/** How often an idle lane looks for a straggling piece to duplicate. */
const ENDGAME_POLL_MS = 100;

/** The most bytes asked of a source in one request. */
const MAX_RUN_BYTES = 32 << 20;

/** The lanes of a transfer's sources. */
export class Lanes {
  readonly #options: LanesOptions;
  /** Abort controllers of the requests of each piece, cancelled when it verifies. */
  readonly #requests = new Map<number, Set<AbortController>>();
  /**
   * The requests writing each piece into the landing, settled once they
   * wrote their last byte: an endgame duplicate that verified first lands
   * only after them, so no late byte of theirs overwrites it.
   */
  readonly #writing = new Map<number, Set<Promise<void>>>();
  /** Piece checks under way: they read the landing's view. */
  readonly #checks = new Set<Promise<void>>();
  /** Pieces whose source is sending them, by the requests sending them. */
  readonly #coming = new Map<number, number>();
  /** Requests a holder of the whole object answered so far. */
  #wholeAnswers = 0;
  #changed = Promise.withResolvers<void>();
  /**
   * Wakes the lanes waiting for a pick: settled only when the picker's
   * version or the ticks moved on (else a waiting lane would find what it
   * found before: nothing), when a request of a source with lanes at its
   * limit ended, or when a source stops.
   */
  #picks = Promise.withResolvers<void>();
  /** The picker's version and the ticks when the lanes were last woken. */
  #wokenAt = -1;
  /** Wakes the idle lanes to look for stragglers: one timer for all of them. */
  #tick: ReturnType<typeof setTimeout> | undefined;
  /** Lanes running, of every source. */
  #running = 0;
  /** Ticks of {@link Lanes.#tick} so far. */
  #ticks = 0;

  /** Creates the lanes of one transfer; none runs before {@link Lanes.run}. */
  constructor(options: LanesOptions) {
    this.#options = options;
  }

  /** Settles at the next change: a piece asked, verified or given back, a source updated. */
  get changed(): Promise<void> {
    return this.#changed.promise;
  }

  /** Requests a holder of the whole object (not a partial one) answered so far. */
  get wholeAnswers(): number {
    return this.#wholeAnswers;
  }

  /** Whether a source is sending `piece` (its request was answered) and it is not verified. */
  coming(piece: number): boolean {
    return (this.#coming.get(piece) ?? 0) > 0;
  }

  /**
   * Something changed: settles {@link Lanes.changed}, and wakes the lanes
   * waiting for a piece when it may give them one.
   */
  pulse(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers<void>();
    if (this.#stamp() !== this.#wokenAt) this.#wake();
  }

  /** The picker's version and the ticks: a lane that found nothing finds nothing until it moves. */
  #stamp(): number {
    return this.#options.picker.version + this.#ticks;
  }

  /** Wakes every lane waiting for a piece. */
  #wake(): void {
    this.#wokenAt = this.#stamp();
    this.#picks.resolve();
    this.#picks = Promise.withResolvers<void>();
  }

  /** Settles once no check reads the landing's view any more. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.#checks);
  }

  /**
   * Runs the lanes of `source` until no piece is missing, `signal` aborts or
   * the source fails (then `source.failure` says why).
   */
  async run(source: Source, signal: AbortSignal | undefined): Promise<void> {
    const stop = signal === undefined
      ? source.stop.signal
      : AbortSignal.any([signal, source.stop.signal]);
    const wake = () => {
      this.pulse();
      this.#wake();
      turn(source);
    };
    stop.addEventListener("abort", wake, { once: true });
    await Promise.all(Array.from({ length: Math.max(1, this.#options.inFlight ?? 3) }, async () => {
      this.#running++;
      try {
        await this.#lane(source, stop);
      } finally {
        turn(source);
        if (--this.#running === 0) {
          clearTimeout(this.#tick);
          this.#tick = undefined;
        }
      }
    }));
    stop.removeEventListener("abort", wake);
    // A piece still being checked may yet fail the source.
    await Promise.allSettled(source.checks);
  }

  /** One lane of `source`: its requests one after another, until nothing is missing or `stop`. */
  async #lane(source: Source, stop: AbortSignal): Promise<void> {
    const picker = this.#options.picker;
    while (picker.missing > 0 && !stop.aborted) {
      const full = source.pieces === undefined;
      // One request at a time to a whole holder while partial holders are
      // about: its uploads spread over the receivers, each piece goes out
      // once, and a receiver that dies takes at most one piece no one else
      // has. No more requests than it took at once when it last said busy.
      const limit = full && picker.partialSources > 0 ? 1 : source.limit;
      const spread = source.requesting >= limit;
      // Another lane of this source found nothing, and nothing changed since:
      // the lanes of every source wake at each change, most with nothing to do.
      const stamp = this.#stamp();
      const pick = spread || source.futile === stamp
        ? undefined
        : picker.next(source.has, source.mine, full, this.#runFor(source));
      if (pick === undefined) {
        if (!spread) source.futile = stamp;
        // All in flight elsewhere: wait for a piece to verify, come back or straggle.
        this.#tick ??= setTimeout(() => {
          this.#tick = undefined;
          this.#ticks++;
          this.pulse();
        }, ENDGAME_POLL_MS);
        if (spread) {
          source.spread++;
          await this.#picks.promise;
          source.spread--;
        } else if (source.watching) {
          // Another lane of this source looks at each change; this one, once that one has a pick.
          await (source.turn ??= Promise.withResolvers<void>()).promise;
        } else {
          source.watching = true;
          await this.#picks.promise;
          source.watching = false;
        }
        continue;
      }
      // The next lane of this source may find a pick as well.
      turn(source);
      source.requesting++;
      try {
        await this.#request(source, pick, stop);
      } catch (error) {
        if (!(error instanceof SourceError)) {
          // No fault of the source (no memory for the bytes): the transfer ends, once every lane has.
          this.#options.broken(error);
          return;
        }
        if (error.fault === "busy") {
          source.limit = Math.max(1, source.sending);
          // The pieces went back to the others; this source is asked again shortly, later
          // each time it is still busy: its slots are long taken by the other receivers.
          const backoff = BUSY_BACKOFF_MS * 2 ** Math.min(source.busy++, 2);
          await sleep(backoff * (0.5 + Math.random()), stop);
          continue;
        }
        this.#fail(source, error);
      } finally {
        source.requesting--;
        // Its lanes at the limit may ask now; the others of every source need no waking.
        if (source.spread > 0) this.#wake();
      }
    }
  }

  /**
   * Pieces to ask at once of `source`: a run from a lone whole holder, so
   * that a request's round trip is paid per run, not per piece; shorter as
   * the end nears, so that the lanes finish together. One piece at a time
   * from a partial holder, and whenever partial holders are about: pieces
   * must spread over the receivers of a broadcast.
   */
  #runFor(source: Source): number {
    if (source.pieces !== undefined || this.#options.picker.partialSources > 0) return 1;
    const lanes = Math.max(1, this.#options.inFlight ?? 3) * Math.max(1, this.#options.sources());
    const most = Math.max(1, Math.floor(MAX_RUN_BYTES / this.#options.record.pieceSize));
    return Math.max(1, Math.min(most, Math.floor(this.#options.picker.missing / (2 * lanes))));
  }

  #fail(source: Source, error: SourceError): void {
    source.failure ??= error;
    source.stop.abort(STOPPED);
  }

  /** One request: the pieces of `pick` from `source`, each checked as it lands. */
  async #request(source: Source, pick: Pick, stop: AbortSignal): Promise<void> {
    const { piece: first, count, duplicate } = pick;
    const { size, pieceSize } = this.#options.record;
    const start = first * pieceSize;
    const end = Math.min(size, (first + count) * pieceSize);
    // An endgame duplicate lands in a scratch piece, whose bytes the budget counts.
    let room: Reservation | undefined;
    if (duplicate && this.#options.budget !== undefined) {
      room = this.#options.budget.tryReserve(end - start);
      if (room === undefined) {
        this.#options.picker.finish(first, false);
        return await sleep(ENDGAME_POLL_MS, stop);
      }
    }
    const target = duplicate ? new Uint8Array(end - start) : this.#options.landing;
    const cancel = new AbortController();
    /** The pieces of this request counted in `#coming`. */
    const sending = new Set<number>();
    const writing = duplicate ? undefined : Promise.withResolvers<void>();
    for (let piece = first; piece < first + count; piece++) {
      let requests = this.#requests.get(piece);
      if (requests === undefined) this.#requests.set(piece, requests = new Set());
      requests.add(cancel);
      source.mine.add(piece);
      if (writing !== undefined) {
        let writers = this.#writing.get(piece);
        if (writers === undefined) this.#writing.set(piece, writers = new Set());
        writers.add(writing.promise);
      }
    }
    let next = first;
    let answered = false;
    let began = performance.now();
    try {
      await requestPieces({
        record: this.#options.record,
        piece: first,
        count,
        holder: source.holder,
        target,
        at: duplicate ? 0 : start,
        client: this.#options.client,
        token: this.#options.token,
        timeout: this.#options.pieceTimeout,
        signal: AbortSignal.any([stop, cancel.signal]),
        accepted: () => {
          // A piece's time runs from its source's answer: a wait in its line for an upload slot is no slowness.
          began = performance.now();
          answered = true;
          source.sending++;
          source.busy = 0;
          // Announced as coming: others leave these pieces to this daemon.
          for (let piece = first; piece < first + count; piece++) {
            this.#coming.set(piece, (this.#coming.get(piece) ?? 0) + 1);
            sending.add(piece);
          }
          this.pulse();
          if (source.pieces === undefined) {
            this.#wholeAnswers++;
            this.#options.wholeAnswered?.();
          }
        },
        onChunk: async (bytes, piece) => {
          if (this.#options.picker.done(piece)) return false;
          await this.#options.rate?.take(bytes, stop);
          return !this.#options.picker.done(piece);
        },
        received: this.#options.onBytes,
        piecePortUnreachable: (reason) =>
          this.#options.onPiecePortUnreachable?.(source.holder, reason),
        // No rate limit to pace the bytes: a piece in one native call.
        step: this.#options.rate === undefined ? pieceSize : undefined,
        landed: (piece, from, to, digest) => {
          next = piece + 1;
          const now = performance.now();
          if (next < first + count) this.#options.picker.restart(next);
          // Over a memfd, the piece's own buffer, and only when it is to be read.
          const bytes = target instanceof Uint8Array
            ? target.subarray(from, to)
            : () => target.range(from, to);
          const ms = now - began;
          this.#check(source, piece, from, to, bytes, {
            duplicate,
            cancel,
            ms,
            room,
            sending,
            digest,
          });
          began = now;
        },
      });
    } finally {
      if (writing !== undefined) {
        for (let piece = first; piece < first + count; piece++) {
          const writers = this.#writing.get(piece);
          writers?.delete(writing.promise);
          if (writers?.size === 0) this.#writing.delete(piece);
        }
        writing.resolve();
      }
      if (answered) source.sending--;
      for (let piece = next; piece < first + count; piece++) {
        this.#settle(source, piece, cancel, false, sending);
      }
      if (next === first) room?.release();
      this.pulse();
    }
  }

  /**
   * Checks a piece that landed, without holding up its request: verified,
   * it is in (a duplicate's scratch written into the landing first) and other
   * requests for it stop; wrong, its source fails, unless another verified
   * it meanwhile.
   */
  #check(
    source: Source,
    piece: number,
    from: number,
    to: number,
    bytes: Uint8Array | (() => Uint8Array),
    request: {
      /** Whether `bytes` is an endgame duplicate's scratch piece (in memory, then). */
      readonly duplicate: boolean;
      readonly cancel: AbortController;
      /** How long the piece's bytes took. */
      readonly ms: number;
      /** The budget's bytes of the scratch piece. */
      readonly room: Reservation | undefined;
      readonly sending: Set<number>;
      /** The bytes' digest, taken as they landed. */
      readonly digest: string | undefined;
    },
  ): void {
    const { duplicate, cancel, ms, room, sending, digest } = request;
    // Bytes of the landing hashed on another thread: mapped until the check is over.
    const release = digest === undefined && !(bytes instanceof Uint8Array)
      ? this.#options.landing.hold()
      : undefined;
    const check = (async () => {
      let verified = false;
      try {
        await checkPiece(this.#options.record, piece, bytes, source.holder, digest);
        if (this.#options.picker.done(piece)) return;
        for (const other of this.#requests.get(piece) ?? []) {
          if (other !== cancel) other.abort(STOPPED);
        }
        if (duplicate && bytes instanceof Uint8Array) {
          // Off the JS thread, once the requests stopped above wrote their last byte.
          await Promise.all(this.#writing.get(piece) ?? []);
          if (this.#options.picker.done(piece)) return;
          await this.#options.landing.land(piece * this.#options.record.pieceSize, bytes);
          if (this.#options.picker.done(piece)) return;
        }
        verified = true;
        // Far behind its own mean: given up only while other sources remain.
        if (source.speed.record(to - from, ms) && this.#options.sources() > 1) {
          this.#fail(
            source,
            new SourceError(
              "slow",
              source.holder,
              `piece ${piece} of ${this.#options.record.id} took far longer per byte than its mean`,
            ),
          );
        }
      } catch (error) {
        if (!(error instanceof SourceError)) throw error;
        if (!this.#options.picker.done(piece)) this.#fail(source, error);
      } finally {
        room?.release();
        release?.();
        this.#settle(source, piece, cancel, verified, sending);
        if (verified) this.#options.verified(piece);
        this.pulse();
      }
    })();
    source.checks.add(check);
    this.#checks.add(check);
    check.catch((error) => {
      // Not the source's fault (the hash itself failed): the transfer ends with it.
      this.#options.broken(error);
    }).finally(() => {
      source.checks.delete(check);
      this.#checks.delete(check);
    });
  }

  /** A request for `piece` by `cancel` is over: checked, or given back. */
  #settle(
    source: Source,
    piece: number,
    cancel: AbortController,
    verified: boolean,
    sending: Set<number>,
  ): void {
    if (sending.delete(piece)) {
      const left = this.#coming.get(piece)! - 1;
      if (left === 0) this.#coming.delete(piece);
      else this.#coming.set(piece, left);
    }
    const requests = this.#requests.get(piece);
    requests?.delete(cancel);
    if (requests?.size === 0) this.#requests.delete(piece);
    source.mine.delete(piece);
    this.#options.picker.finish(piece, verified);
  }
}
