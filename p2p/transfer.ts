/**
 * One object moving into this daemon, piece by piece, from several holders
 * at once over HTTP Range.
 *
 * Each source gets a few requests in flight; the {@link PiecePicker} hands
 * out pieces rarest first (random among equals), and in the endgame asks a
 * second source for a piece still in flight, into a scratch piece, cancelling
 * the loser. Bytes go straight into the object's {@link Landing} (its
 * memfd, written with `pwrite`, or the CREATE blob's writable view): from
 * the socket, hashed on the way, over native connections
 * ({@link RangeClient}), else from each chunk of a `fetch` response; never
 * the whole object in JS. Each piece is checked against its digest as soon
 * as its last byte is in, and the whole object against the content digest,
 * hashed in order as pieces are verified (unless the record's binding ties
 * it to the piece digests).
 *
 * A source that fails costs the pieces it was fetching, not the transfer:
 * they go back to the others. A source whose bytes do not verify, that
 * times out, or that is far slower than its own mean is put on the
 * blocklist; the directory is asked for more sources when none is left.
 *
 * @module
 */
import type { ContentRecord, Holder } from "./directory.ts";
import { pieceCount } from "./content.ts";
import { type WholeHash, wholeHash } from "./sha256.ts";
import { blocks, type SourceError, sourceKey } from "./source_error.ts";
import { Blocklist } from "./swarm/blocklist.ts";
import { PiecePicker } from "./swarm/piece_picker.ts";
import type { PieceTimeout } from "./swarm/piece_timeout.ts";
import { RangeClient } from "./swarm/range_client.ts";
import { announcedBitfield, sameBits } from "./swarm/bitfield.ts";
import { holdingOf, Lanes, type Source, sourceOf, STOPPED } from "./swarm/source_lanes.ts";
import type { TransferBudget } from "./swarm/transfer_budget.ts";
import { type Landing, viewLanding } from "./swarm/landing.ts";
import { ViewLoans } from "./swarm/view_loans.ts";
import type { LentRange } from "../transport/http/upload_gate.ts";
import type { TokenBucket } from "../transport/rate_limit.ts";

/** Options of {@link Transfer}. */
export interface TransferOptions {
  /** The cluster token, sent as a bearer token. */
  readonly token?: string | undefined;
  /** Piece requests in flight per source. Default 3, as Kraken does. */
  readonly inFlight?: number;
  /** Sources asked at once. Default 8. */
  readonly maxSources?: number;
  /**
   * Milliseconds a piece may take: `base + perMiB` for each MiB of it, as
   * Kraken's 4 s + 4 s/MB. Default `{ base: 4000, perMiB: 4000 }`.
   */
  readonly pieceTimeout?: PieceTimeout;
  /** Sources not to ask, shared by a daemon's transfers. Default: one of this transfer's own. */
  readonly blocklist?: Blocklist;
  /** Called with the bytes of each chunk as it lands, for metrics. */
  readonly onBytes?: (bytes: number) => void;
  /** Called when a holder's piece port did not answer: its pieces are asked at its address. */
  readonly onPiecePortUnreachable?: (holder: Holder, reason: string) => void;
  /** The daemon's download rate limit, shared by its transfers. Default: unlimited. */
  readonly rate?: TokenBucket | undefined;
  /** The daemon's transfer budget, which endgame scratch pieces take from. Default: none. */
  readonly budget?: TransferBudget | undefined;
  /**
   * Whether to hash the whole object against the content digest. Default
   * true; false when the record's binding ties that digest to the piece
   * digests, which then prove the whole.
   */
  readonly whole?: boolean;
  /**
   * Called each time the verified prefix grows, with its length in bytes:
   * every piece before it is verified, so a local reader may stream it.
   */
  readonly onPrefix?: (bytes: number) => void;
  /** Called as each piece verifies, with its index: its bytes stay as they are from then on. */
  readonly onPiece?: (piece: number) => void;
}

/** Where a transfer finds sources and reports the ones it gives up. */
export interface Sources {
  /**
   * Holders to ask next: the transfer skips those it tried and those
   * blocked. `stranded`: no source runs, so the directory itself is to be
   * asked now (not a listing kept from its pushes, which may have missed one).
   */
  more(stranded?: boolean): Promise<readonly Holder[]>;
  /** A source given up: the transfer goes on without it. */
  failed(error: SourceError): void;
  /**
   * Optional: calls `announced` with each holder announced between two
   * {@link Sources.more} (the directory pushed it): a source running takes
   * its pieces at once, and a new holder makes the transfer ask for sources
   * at once instead of at its next round.
   */
  onChange?(announced: (holder: Holder) => void): void;
}

/**
 * How often the sources are asked again during a transfer: partial holders
 * gain pieces. Each time a directory lookup when it pushes no changes
 * (see `holder_listing.ts`); with pushes, a look at the listing they keep.
 */
const REFRESH_MS = 50;

/** The pieces of one object arriving into a {@link Landing}, verified as they complete. */
export class Transfer {
  readonly #record: ContentRecord;
  readonly #landing: Landing;
  readonly #options: TransferOptions;
  readonly #client: RangeClient;
  readonly #picker: PiecePicker;
  /** Pieces of the object. */
  readonly #pieces: number;
  readonly #blocklist: Blocklist;
  readonly #lanes: Lanes;
  /** The whole object's hash, fed in order; undefined when the pieces prove it. */
  readonly #whole: WholeHash | undefined;
  readonly #tried = new Set<string>();
  readonly #failures: string[] = [];
  /** Stops of the sources running. */
  readonly #stops = new Set<AbortController>();
  /** An error that is no source's fault, ending the transfer. */
  #broken: unknown;
  /** Pieces before this one are verified (and in the whole hash, when kept). */
  #hashed = 0;
  /** Sources running now. */
  #sources = 0;
  /** Ranges of the view lent to relay responses. */
  readonly #loans = new ViewLoans();
  /** Whether ranges are still lent (until {@link Transfer.endLending}). */
  #lending = true;
  /** Keeps the landing's view mapped past its close while ranges are lent. */
  readonly #lendingHold: () => void;
  /** Wakes {@link Transfer.run}'s wait: a source ended. */
  #wake: (() => void) | undefined;
  /** Settles {@link Transfer.news}'s promise. */
  #newsWaiter: { verified: number; wholeAnswers: number; resolve: () => void } | undefined;

  /**
   * Starts a transfer; nothing is fetched before {@link Transfer.run}.
   *
   * @param record The object's content record, checked already.
   * @param landing Where the pieces land, `record.size` bytes (a writable view is one).
   * @param options Token, requests in flight, piece timeouts, blocklist.
   */
  constructor(record: ContentRecord, landing: Landing | Uint8Array, options: TransferOptions = {}) {
    this.#record = record;
    this.#landing = landing instanceof Uint8Array ? viewLanding(landing) : landing;
    this.#lendingHold = this.#landing.hold();
    this.#options = options;
    this.#client = new RangeClient();
    this.#pieces = pieceCount(record.size, record.pieceSize);
    this.#picker = new PiecePicker(this.#pieces);
    this.#blocklist = options.blocklist ?? new Blocklist();
    this.#lanes = new Lanes({
      record,
      landing: this.#landing,
      picker: this.#picker,
      client: this.#client,
      token: options.token,
      inFlight: options.inFlight,
      pieceTimeout: options.pieceTimeout,
      rate: options.rate,
      onBytes: options.onBytes,
      onPiecePortUnreachable: options.onPiecePortUnreachable,
      budget: options.budget,
      sources: () => this.#sources,
      verified: (piece) => {
        options.onPiece?.(piece);
        this.#hashVerified();
        this.#tellNews();
      },
      wholeAnswered: () => this.#tellNews(),
      broken: (error) => {
        this.#broken ??= error;
        for (const stop of this.#stops) stop.abort(STOPPED);
      },
    });
    this.#whole = options.whole === false ? undefined : wholeHash();
  }

  /** The object's size in bytes. */
  get size(): number {
    return this.#record.size;
  }

  /** Pieces still missing. */
  get missing(): number {
    return this.#picker.missing;
  }

  /** Why each source given up failed, in order. */
  get failures(): readonly string[] {
    return this.#failures;
  }

  /**
   * Fetches every missing piece from as many sources at once as allowed,
   * asking `sources` for more as they fail.
   *
   * @returns Once no piece is missing, or no source is left (then {@link Transfer.missing} > 0).
   */
  async run(sources: Sources, signal?: AbortSignal): Promise<void> {
    const running = new Set<Promise<void>>();
    const stops = this.#stops;
    const maxSources = Math.max(1, this.#options.maxSources ?? 8);
    let waiting: Holder[] = [];
    const active = new Map<string, Source>();
    let looked = -Infinity;
    /** A holder not running as a source was announced since the last {@link Sources.more}. */
    let changed = false;
    sources.onChange?.((holder) => {
      const source = active.get(sourceKey(holder));
      if (source !== undefined) return this.#update(source, holder.pieces);
      if (!this.#fresh(holder)) return;
      changed = true;
      this.#wake?.();
    });
    try {
      while (this.#picker.missing > 0 && signal?.aborted !== true && this.#broken === undefined) {
        const now = performance.now();
        if (
          (running.size < maxSources && waiting.length === 0) || changed ||
          now - looked >= REFRESH_MS
        ) {
          looked = now;
          changed = false;
          let listed: readonly Holder[];
          try {
            listed = await sources.more(running.size === 0);
          } catch (error) {
            // The directory away (Redis down): the sources running go on.
            if (running.size === 0) throw error;
            listed = [];
          }
          for (const holder of listed) {
            const source = active.get(sourceKey(holder));
            if (source !== undefined) this.#update(source, holder.pieces);
          }
          waiting = listed.filter((holder) => this.#fresh(holder, true));
        }
        while (running.size < maxSources && waiting.length > 0) {
          const holder = waiting.shift()!;
          if (!this.#fresh(holder)) continue;
          const key = sourceKey(holder);
          this.#tried.add(key);
          const source = sourceOf(holder, this.#pieces);
          stops.add(source.stop);
          active.set(key, source);
          this.#picker.addSource(source.has, source.pieces !== undefined, source.covers);
          const done = this.#source(source, sources, signal).finally(() => {
            this.#picker.removeSource(source.has, source.pieces !== undefined, source.covers);
            active.delete(key);
            stops.delete(source.stop);
            running.delete(done);
            this.#sources = running.size;
            this.#lanes.pulse();
            this.#wake?.();
          });
          running.add(done);
          this.#sources = running.size;
        }
        if (running.size === 0) break;
        if (changed) continue;
        // Sources end when nothing is missing or when they fail; partial ones gain pieces.
        // One timer and one promise a round: no reaction left on every source's
        // promise, and no abort (nor its exception) to end the wait.
        const { promise, resolve } = Promise.withResolvers<void>();
        this.#wake = resolve;
        const timer = setTimeout(resolve, REFRESH_MS);
        await promise;
        clearTimeout(timer);
        this.#wake = undefined;
      }
    } finally {
      for (const stop of stops) stop.abort(STOPPED);
      await Promise.allSettled(running);
    }
    if (this.#broken !== undefined) throw this.#broken;
    if (signal?.aborted) throw signal.reason;
  }

  /** From now on, pieces equally rare are fetched in order: a local reader streams the object. */
  inOrder(): void {
    this.#picker.inOrder = true;
  }

  /**
   * What this daemon announces as a partial holder: the bitfield of the
   * pieces verified so far, then that of the pieces a source is sending.
   */
  bitfield(): Uint8Array {
    return announcedBitfield(
      this.#pieces,
      (piece) => this.#picker.done(piece),
      (piece) => this.#lanes.coming(piece),
    );
  }

  /** Settles at the next change of {@link Transfer.bitfield} (or of the sources). */
  get changed(): Promise<void> {
    return this.#lanes.changed;
  }

  /** Pieces verified so far. */
  get verified(): number {
    return this.#pieces - this.#picker.missing;
  }

  /**
   * Requests a holder of the whole object answered so far: each makes its
   * pieces "coming" here, which others are to know soon (see `announce_pace.ts`).
   */
  get wholeAnswers(): number {
    return this.#lanes.wholeAnswers;
  }

  /**
   * Settles once `verified` pieces are verified, or once a holder of the
   * whole object answered more than `wholeAnswers` requests: unlike
   * {@link Transfer.changed}, not at each other request or source change.
   * One waiter: a new call replaces the last (which then never settles).
   */
  news(verified: number, wholeAnswers: number): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#newsWaiter = { verified, wholeAnswers, resolve };
    this.#tellNews();
    return promise;
  }

  #tellNews(): void {
    const waiter = this.#newsWaiter;
    if (waiter === undefined) return;
    if (this.verified < waiter.verified && this.wholeAnswers <= waiter.wholeAnswers) return;
    this.#newsWaiter = undefined;
    waiter.resolve();
  }

  /**
   * A copy of bytes `start` to `end` (exclusive) when every piece they touch
   * is verified: a partial holder serves them to others at once.
   */
  copyVerified(start: number, end: number): Uint8Array | undefined {
    return this.#isVerified(start, end) ? this.#landing.range(start, end).slice() : undefined;
  }

  /**
   * Bytes `start` to `end` (exclusive) of the object's own memory, lent to
   * one relay response, when every piece they touch is verified and lending
   * has not ended ({@link Transfer.endLending}). The memory stays mapped
   * until the loan is done; its bytes are looked at only when first read: a
   * relay that sends them from the memfd (the native listener) never reads
   * them, and then the landing makes no view (see `Landing.range`).
   */
  lendVerified(start: number, end: number): LentRange | undefined {
    if (!this.#lending || !this.#isVerified(start, end)) return undefined;
    // A chunk of the view may still be on its way out after lending ends: mapped until done.
    const release = this.#landing.hold();
    const landing = this.#landing;
    const loans = this.#loans;
    let loan: LentRange | undefined;
    let copy: Uint8Array | undefined;
    return {
      get bytes() {
        if (loan === undefined && copy === undefined) {
          loan = loans.lend(landing.range(start, end));
          // Lending ended before the first read: a copy, from memory still held.
          if (loan === undefined) copy = landing.range(start, end).slice();
        }
        return loan?.bytes ?? copy!;
      },
      done() {
        loan?.done();
        release();
      },
    };
  }

  /**
   * Lends no more; the ranges still lent get copies of their bytes: the view
   * may close at once. Until then, a landing closed (its object sealed) keeps
   * its view mapped for the ranges lent (see `Landing.hold`). Idempotent.
   */
  endLending(): void {
    this.#lending = false;
    this.#loans.end();
    this.#lendingHold();
  }

  #isVerified(start: number, end: number): boolean {
    const { size, pieceSize } = this.#record;
    if (start < 0 || end > size || start >= end) return false;
    for (let piece = Math.floor(start / pieceSize); piece * pieceSize < end; piece++) {
      if (!this.#picker.done(piece)) return false;
    }
    return true;
  }

  /** A source's pieces as the directory lists them now; the picker's counts follow. */
  #update(source: Source, pieces: Uint8Array | undefined): void {
    // Listed again as it was: nothing to count anew, and no lane to wake.
    if (sameBits(source.pieces, pieces)) return;
    const count = this.#pieces;
    this.#picker.replaceSource(holdingOf(source.pieces, count), holdingOf(pieces, count));
    source.pieces = pieces;
    this.#lanes.pulse();
  }

  /**
   * The whole object's digest, once every piece is in.
   *
   * @returns Whether it is the record's content digest.
   */
  async verifyWhole(): Promise<boolean> {
    if (this.#picker.missing > 0) return false;
    if (this.#whole === undefined) return true;
    return await this.#whole.digest() === this.#record.digest;
  }

  /**
   * Ends the HTTP client, and settles once no hash and no relay reads the
   * view any more: only then may the blob behind it go. Idempotent.
   */
  async close(): Promise<void> {
    this.#client.close();
    this.endLending();
    await this.#lanes.settled();
    await this.#whole?.settled();
  }

  /** Whether `holder` is neither tried nor blocked; `report` notes a block among the failures. */
  #fresh(holder: Holder, report = false): boolean {
    const key = sourceKey(holder);
    if (this.#tried.has(key)) return false;
    if (!this.#blocklist.blocked(key)) return true;
    if (report) {
      this.#tried.add(key);
      this.#failures.push(`Holder ${holder.node} at ${holder.address}: on the blocklist`);
    }
    return false;
  }

  /** Runs the lanes of one source until nothing is missing or it fails; reports a failure. */
  async #source(source: Source, sources: Sources, signal: AbortSignal | undefined): Promise<void> {
    await this.#lanes.run(source, signal);
    const failure = source.failure;
    if (failure === undefined) return;
    this.#failures.push(failure.message);
    if (blocks(failure.fault)) this.#blocklist.block(sourceKey(source.holder));
    sources.failed(failure);
  }

  /**
   * Moves the verified prefix on over the pieces verified since: the whole
   * hash (when kept) takes them, and `onPrefix` hears of it.
   */
  #hashVerified(): void {
    const { size, pieceSize } = this.#record;
    const count = pieceCount(size, pieceSize);
    const before = this.#hashed;
    while (this.#hashed < count && this.#picker.done(this.#hashed)) {
      const from = this.#hashed * pieceSize;
      this.#whole?.update(this.#landing.range(from, Math.min(size, from + pieceSize)));
      this.#hashed++;
    }
    // Read on another thread later: the memory stays mapped until then, even
    // past the landing's close (a hash of unmapped memory ends the process).
    if (this.#whole !== undefined && this.#hashed > before) {
      this.#whole.settled().then(this.#landing.hold());
    }
    if (this.#hashed > before) this.#options.onPrefix?.(Math.min(size, this.#hashed * pieceSize));
  }
}
