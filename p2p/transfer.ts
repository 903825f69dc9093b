/**
 * One object moving into this daemon, piece by piece, from several holders
 * at once over HTTP Range.
 *
 * Each source gets a few requests in flight; the {@link PiecePicker} hands
 * out pieces rarest first (random among equals), and in the endgame asks a
 * second source for a piece still in flight, into a scratch piece, cancelling
 * the loser. Bytes go from each response chunk straight into the writable
 * view of the object's CREATE blob: never the whole object in JS. Each piece
 * is checked against its digest as soon as its last byte is in (on another
 * thread), and the whole object against the content digest, hashed in order
 * as pieces are verified.
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
import { blocks, SourceError, sourceKey } from "./source_error.ts";
import { Blocklist } from "./swarm/blocklist.ts";
import { PiecePicker } from "./swarm/piece_picker.ts";
import { requestPiece } from "./swarm/piece_request.ts";
import type { PieceTimeout } from "./swarm/piece_timeout.ts";
import { SourceSpeed } from "./swarm/source_speed.ts";
import { bitfieldOf, hasPiece } from "./swarm/bitfield.ts";
import { sleep, type TokenBucket } from "../transport/rate_limit.ts";

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
  /** The daemon's download rate limit, shared by its transfers. Default: unlimited. */
  readonly rate?: TokenBucket | undefined;
  /**
   * Called each time the verified prefix grows, with its length in bytes:
   * every piece before it is verified, so a local reader may stream it.
   */
  readonly onPrefix?: (bytes: number) => void;
}

/** Where a transfer finds sources and reports the ones it gives up. */
export interface Sources {
  /** Holders to ask next: the transfer skips those it tried and those blocked. */
  more(): Promise<readonly Holder[]>;
  /** A source given up: the transfer goes on without it. */
  failed(error: SourceError): void;
}

interface Source {
  readonly holder: Holder;
  readonly stop: AbortController;
  readonly mine: Set<number>;
  readonly speed: SourceSpeed;
  /** The pieces a partial holder has, as last listed; undefined for a whole copy. */
  pieces: Uint8Array | undefined;
  /** Whether the source has a piece (of `pieces`). */
  readonly has: (piece: number) => boolean;
}

/** How long a lane waits after a 503 before asking its source again (jittered). */
const BUSY_BACKOFF_MS = 150;

/** How often the directory is asked again during a transfer: partial holders gain pieces. */
const REFRESH_MS = 100;

/** The pieces of one object arriving into `view`, verified as they complete. */
export class Transfer {
  readonly #record: ContentRecord;
  readonly #view: Uint8Array;
  readonly #options: TransferOptions;
  readonly #client: Deno.HttpClient;
  readonly #picker: PiecePicker;
  /** Pieces of the object. */
  readonly #pieces: number;
  readonly #blocklist: Blocklist;
  readonly #whole: WholeHash = wholeHash();
  /** Abort controllers of the requests of each piece, cancelled when it verifies. */
  readonly #requests = new Map<number, Set<AbortController>>();
  readonly #tried = new Set<string>();
  readonly #failures: string[] = [];
  /** Pieces before this one are verified and in the whole hash. */
  #hashed = 0;
  /** Sources running now. */
  #sources = 0;
  #changed = Promise.withResolvers<void>();

  /**
   * Starts a transfer; nothing is fetched before {@link Transfer.run}.
   *
   * @param record The object's content record, checked already.
   * @param view The CREATE blob's writable view, `record.size` bytes.
   * @param options Token, requests in flight, piece timeouts, blocklist.
   */
  constructor(record: ContentRecord, view: Uint8Array, options: TransferOptions = {}) {
    this.#record = record;
    this.#view = view;
    this.#options = options;
    this.#client = Deno.createHttpClient({});
    this.#pieces = pieceCount(record.size, record.pieceSize);
    this.#picker = new PiecePicker(this.#pieces);
    this.#blocklist = options.blocklist ?? new Blocklist();
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
    const stops = new Set<AbortController>();
    const maxSources = Math.max(1, this.#options.maxSources ?? 8);
    let waiting: Holder[] = [];
    const active = new Map<string, Source>();
    let looked = -Infinity;
    try {
      while (this.#picker.missing > 0 && signal?.aborted !== true) {
        const now = performance.now();
        if ((running.size < maxSources && waiting.length === 0) || now - looked >= REFRESH_MS) {
          looked = now;
          let listed: readonly Holder[];
          try {
            listed = await sources.more();
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
          const source: Source = {
            holder,
            stop: new AbortController(),
            mine: new Set(),
            speed: new SourceSpeed(),
            pieces: holder.pieces,
            has: (piece) => source.pieces === undefined || hasPiece(source.pieces, piece),
          };
          stops.add(source.stop);
          active.set(key, source);
          this.#picker.addSource(source.has, source.pieces !== undefined);
          const done = this.#source(source, sources, signal).finally(() => {
            this.#picker.removeSource(source.has, source.pieces !== undefined);
            active.delete(key);
            stops.delete(source.stop);
            running.delete(done);
            this.#sources = running.size;
            this.#pulse();
          });
          running.add(done);
          this.#sources = running.size;
        }
        if (running.size === 0) break;
        // Sources end when nothing is missing or when they fail; partial ones gain pieces.
        const tick = new AbortController();
        await Promise.race([...running, sleep(REFRESH_MS, tick.signal)]);
        tick.abort();
      }
    } finally {
      for (const stop of stops) stop.abort();
      await Promise.allSettled(running);
    }
    if (signal?.aborted) throw signal.reason;
  }

  /** From now on, pieces equally rare are fetched in order: a local reader streams the object. */
  inOrder(): void {
    this.#picker.inOrder = true;
  }

  /** The bitfield of the pieces verified so far. */
  bitfield(): Uint8Array {
    return bitfieldOf(this.#pieces, (piece) => this.#picker.done(piece));
  }

  /** Pieces verified so far. */
  get verified(): number {
    return this.#pieces - this.#picker.missing;
  }

  /**
   * A copy of bytes `start` to `end` (exclusive) when every piece they touch
   * is verified: a partial holder serves them to others at once.
   */
  copyVerified(start: number, end: number): Uint8Array | undefined {
    const { size, pieceSize } = this.#record;
    if (start < 0 || end > size || start >= end) return undefined;
    for (let piece = Math.floor(start / pieceSize); piece * pieceSize < end; piece++) {
      if (!this.#picker.done(piece)) return undefined;
    }
    return this.#view.slice(start, end);
  }

  /** A source's pieces as the directory lists them now; the picker's counts follow. */
  #update(source: Source, pieces: Uint8Array | undefined): void {
    this.#picker.removeSource(source.has, source.pieces !== undefined);
    source.pieces = pieces;
    this.#picker.addSource(source.has, source.pieces !== undefined);
    this.#pulse();
  }

  /**
   * The whole object's digest, once every piece is in.
   *
   * @returns Whether it is the record's content digest.
   */
  async verifyWhole(): Promise<boolean> {
    if (this.#picker.missing > 0) return false;
    return await this.#whole.digest() === this.#record.digest;
  }

  /**
   * Ends the HTTP client, and settles once no hash reads the view any more:
   * only then may the blob behind it go. Idempotent.
   */
  async close(): Promise<void> {
    try {
      this.#client.close();
    } catch {
      // Closed already.
    }
    await this.#whole.settled();
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

  #pulse(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers<void>();
  }

  /** Runs the lanes of one source until nothing is missing or it fails. */
  async #source(source: Source, sources: Sources, signal: AbortSignal | undefined): Promise<void> {
    const stop = signal === undefined
      ? source.stop.signal
      : AbortSignal.any([signal, source.stop.signal]);
    const lanes = Math.max(1, this.#options.inFlight ?? 3);
    let failure: SourceError | undefined;
    const aborted = abortion(stop);
    await Promise.all(Array.from({ length: lanes }, async () => {
      while (this.#picker.missing > 0 && !stop.aborted) {
        const pick = this.#picker.next(source.has, source.mine, source.pieces === undefined);
        if (pick === undefined) {
          // All in flight elsewhere: wait for a piece to verify, come back or straggle.
          await Promise.race([this.#changed.promise, aborted, sleep(ENDGAME_POLL_MS, stop)]);
          continue;
        }
        try {
          await this.#piece(source, pick.piece, pick.duplicate, stop);
        } catch (error) {
          if (!(error instanceof SourceError)) throw error;
          if (error.fault === "busy") {
            // The piece went back to the others; this source is asked again shortly.
            await sleep(BUSY_BACKOFF_MS * (0.5 + Math.random()), stop);
            continue;
          }
          failure ??= error;
          source.stop.abort();
        }
      }
    }));
    if (failure === undefined) return;
    this.#failures.push(failure.message);
    if (blocks(failure.fault)) this.#blocklist.block(sourceKey(source.holder));
    sources.failed(failure);
  }

  async #piece(
    source: Source,
    piece: number,
    duplicate: boolean,
    stop: AbortSignal,
  ): Promise<void> {
    const { size, pieceSize } = this.#record;
    const start = piece * pieceSize;
    const length = Math.min(size, start + pieceSize) - start;
    const cancel = new AbortController();
    let requests = this.#requests.get(piece);
    if (requests === undefined) this.#requests.set(piece, requests = new Set());
    requests.add(cancel);
    source.mine.add(piece);
    const began = performance.now();
    let verified = false;
    let slow = false;
    try {
      // An endgame duplicate lands in a scratch piece: the first request may still write the view.
      const target = duplicate ? new Uint8Array(length) : this.#view;
      verified = await requestPiece({
        record: this.#record,
        piece,
        holder: source.holder,
        target,
        at: duplicate ? 0 : start,
        client: this.#client,
        token: this.#options.token,
        timeout: this.#options.pieceTimeout,
        signal: AbortSignal.any([stop, cancel.signal]),
        onChunk: async (bytes) => {
          if (this.#picker.done(piece)) return false;
          await this.#options.rate?.take(bytes, stop);
          if (this.#picker.done(piece)) return false;
          this.#options.onBytes?.(bytes);
          return true;
        },
      });
      if (!verified || this.#picker.done(piece)) return;
      if (duplicate) this.#view.set(target, start);
      for (const other of requests) if (other !== cancel) other.abort();
      // Far behind its own mean: given up only while other sources remain.
      slow = source.speed.record(length, performance.now() - began) && this.#sources > 1;
    } finally {
      requests.delete(cancel);
      if (requests.size === 0) this.#requests.delete(piece);
      source.mine.delete(piece);
      this.#picker.finish(piece, verified);
      if (verified) this.#hashVerified();
      this.#pulse();
    }
    if (slow) {
      throw new SourceError(
        "slow",
        source.holder,
        `piece ${piece} of ${this.#record.id} took far longer per byte than its mean`,
      );
    }
  }

  /** Feeds the whole hash the verified pieces that follow those it has. */
  #hashVerified(): void {
    const { size, pieceSize } = this.#record;
    const count = pieceCount(size, pieceSize);
    const before = this.#hashed;
    while (this.#hashed < count && this.#picker.done(this.#hashed)) {
      const from = this.#hashed * pieceSize;
      this.#whole.update(this.#view.subarray(from, Math.min(size, from + pieceSize)));
      this.#hashed++;
    }
    if (this.#hashed > before) this.#options.onPrefix?.(Math.min(size, this.#hashed * pieceSize));
  }
}

/** How often an idle source looks for a straggling piece to duplicate. */
const ENDGAME_POLL_MS = 100;

/** A promise settled when `signal` aborts (never rejected). */
function abortion(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}
