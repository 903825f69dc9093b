/**
 * A transfer's listing of its object's holders, kept off the transfer's
 * path: the directory is looked up again in the background, a transfer
 * asking for holders waits for it only briefly and otherwise gets the last
 * listing, and while the directory does not answer (Redis down or hung) the
 * partial holders already known are asked directly what they hold now.
 *
 * Without that fallback a receiver whose directory went away kept the
 * picture of the moment it went: pieces on their way to other receivers
 * stayed "coming" there for good, and it waited for them until the whole
 * holder's away rule (2 s, or 4 mean piece times) let it ask for them
 * again (a 16 MiB broadcast to 3 daemons took 8.7 s instead of 2.9 s).
 *
 * @module
 */
import type { Holder } from "./directory.ts";

/** What a {@link HolderListing} works with. */
export interface HolderListingOptions {
  /** The holders listed when the transfer began. */
  readonly initial: readonly Holder[];
  /** The directory's listing now (worth asking, of the same content); rejects when it is away. */
  readonly lookup: () => Promise<Holder[]>;
  /**
   * Asks a partial holder what it holds now: the holder as the directory
   * would list it, null when it holds none of the content, undefined when
   * it did not answer clearly.
   */
  readonly ask: (holder: Holder) => Promise<Holder | null | undefined>;
  /** Reports that the directory is away, once per outage. */
  readonly away?: (error: unknown) => void;
}

/** Milliseconds a transfer waits for a lookup before it takes the last listing. */
const LOOKUP_WAIT_MS = 50;
/**
 * Milliseconds a lookup may take, from its start, before the known partial
 * holders are asked directly. Twice the slowest lookup seen on a loaded
 * 2-core machine (8 daemons, load 10-16: p50 7 ms, p99 280 ms, most 525 ms):
 * at 250 ms one lookup in a hundred sent every partial holder an HTTP
 * question (and each an answer) with the directory there all along.
 */
const HUNG_MS = 500;
/** The least time between two rounds of direct questions: each is a request per partial holder. */
const ASK_GAP_MS = 200;

/** The holders of one transfer's object, refreshed in the background. */
export class HolderListing {
  readonly #options: HolderListingOptions;
  #latest: readonly Holder[];
  #refreshing: Promise<void> | undefined;
  /** The lookup under way: a hung directory gets one at a time. */
  #lookup: Promise<Holder[]> | undefined;
  /** When {@link HolderListing.#lookup} began. */
  #lookupAt = 0;
  #askedAt = -Infinity;
  #away = false;

  /** A listing that starts with `options.initial`. */
  constructor(options: HolderListingOptions) {
    this.#options = options;
    this.#latest = options.initial;
  }

  /**
   * The holders as known now: starts a refresh unless one runs, and waits
   * for it at most {@link LOOKUP_WAIT_MS} before answering with the last
   * listing. Never rejects.
   */
  async next(): Promise<readonly Holder[]> {
    this.#refreshing ??= this.#refresh().finally(() => this.#refreshing = undefined);
    await within(this.#refreshing, LOOKUP_WAIT_MS, undefined);
    return this.#latest;
  }

  /** Settles once no refresh runs. */
  async settled(): Promise<void> {
    await this.#refreshing;
    await this.#lookup?.catch(() => {});
  }

  async #refresh(): Promise<void> {
    if (this.#lookup === undefined) {
      this.#lookupAt = performance.now();
      this.#lookup = this.#options.lookup().finally(() => this.#lookup = undefined);
    }
    const lookup = this.#lookup;
    const outcome = await within(
      lookup.then((holders) => ({ holders }), (error: unknown) => ({ error })),
      Math.max(0, this.#lookupAt + HUNG_MS - performance.now()),
      { error: undefined as unknown },
    );
    if ("holders" in outcome) {
      this.#latest = outcome.holders;
      this.#away = false;
      return;
    }
    lookup.catch(() => {});
    if (!this.#away) {
      this.#away = true;
      this.#options.away?.(outcome.error);
    }
    await this.#askPartials();
  }

  /** Asks each partial holder known what it holds now; a holder that says nothing clear stays as it was. */
  async #askPartials(): Promise<void> {
    const now = performance.now();
    if (now - this.#askedAt < ASK_GAP_MS) return;
    this.#askedAt = now;
    const known = this.#latest;
    const answers = await Promise.all(
      known.map((holder) => holder.pieces === undefined ? holder : this.#options.ask(holder)),
    );
    const listed: Holder[] = [];
    answers.forEach((answer, i) => {
      if (answer === undefined) listed.push(known[i]!);
      else if (answer !== null) listed.push(answer);
    });
    this.#latest = listed;
  }
}

/**
 * What `promise` resolves to, or `late` when it rejects or `ms` pass first:
 * one timer, cleared as the promise settles (a lookup is waited for several
 * times a second; no abort, nor its exception, ends the wait).
 */
function within<T>(promise: Promise<T>, ms: number, late: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(late), ms);
    const done = (value: T) => {
      clearTimeout(timer);
      resolve(value);
    };
    promise.then(done, () => done(late));
  });
}
