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
 * A directory that pushes changes of the holders (see `Directory.watch`)
 * keeps the listing current between lookups: while its watch is live, the
 * directory is looked up only every {@link FALLBACK_MS}, in case a change
 * was lost; without one, as often as the transfer asks.
 *
 * @module
 */
import type { Holder, HolderChange } from "./directory.ts";

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
  /**
   * Whether the directory's pushes reach {@link HolderListing.apply} now (its
   * watch is live). Default: never.
   */
  readonly live?: () => boolean;
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
/**
 * Milliseconds between lookups while the directory pushes changes: only a
 * change lost on its way (a connection dropped and made again) waits for
 * one. Ten times the transfer's own period, which lookups keep without pushes.
 */
export const FALLBACK_MS = 500;

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
  /** When the start of the listing taken last: older listings are stale. */
  #takenAt = -Infinity;
  /** Since when the pushes are live, as first seen; undefined while they are not. */
  #liveSince: number | undefined;
  /** Holders pushed (null: gone) since the listing taken last, with when. */
  readonly #pushed = new Map<string, { holder: Holder | null; at: number }>();
  /** The object removed since the listing taken last, and when. */
  #removedAt = -Infinity;
  /** Told of each holder announced by a push. */
  #announced: ((holder: Holder) => void) | undefined;

  /** A listing that starts with `options.initial`. */
  constructor(options: HolderListingOptions) {
    this.#options = options;
    this.#latest = options.initial;
  }

  /**
   * The holders as known now: starts a refresh unless one runs, and waits
   * for it at most {@link LOOKUP_WAIT_MS} before answering with the last
   * listing; while pushes are live, only when a lookup is {@link HolderListing.due} or
   * `force`d (the transfer has no source left). Never rejects.
   */
  async next(force = false): Promise<readonly Holder[]> {
    if (!this.due() && !force) return this.#latest;
    this.#refreshing ??= this.#refresh().finally(() => this.#refreshing = undefined);
    await within(this.#refreshing, LOOKUP_WAIT_MS, undefined);
    return this.#latest;
  }

  /**
   * Whether a lookup is due: always without live pushes; with them, once
   * none has started since they went live, then every {@link FALLBACK_MS}.
   */
  due(): boolean {
    if (this.#lookup !== undefined || this.#options.live?.() !== true) {
      if (this.#lookup === undefined) this.#liveSince = undefined;
      return true;
    }
    const now = performance.now();
    this.#liveSince ??= now;
    return this.#takenAt < this.#liveSince || now - this.#takenAt >= FALLBACK_MS;
  }

  /** Whether the directory's pushes reach the listing now. */
  get live(): boolean {
    return this.#options.live?.() === true;
  }

  /**
   * Whether a listing from elsewhere would spare a lookup soon: pushes are
   * live and a lookup is due. Without pushes, lookups come so often that
   * one more listing spares none.
   */
  wantsListing(): boolean {
    return this.live && this.due();
  }

  /**
   * Takes a listing of the directory from elsewhere (an announce that
   * answered with one), as a lookup begun at `startedAt`
   * (`performance.now()`) would have; an older one than that taken last is
   * stale and left.
   */
  offer(holders: readonly Holder[], startedAt: number): void {
    if (startedAt < this.#takenAt) return;
    this.#take(holders, startedAt);
    this.#away = false;
  }

  /**
   * Applies a change the directory pushed (of this content, worth asking:
   * the caller filters), and tells the transfer.
   */
  apply(change: HolderChange): void {
    const at = performance.now();
    if (change.kind === "removed") {
      this.#pushed.clear();
      this.#removedAt = at;
      this.#latest = [];
    } else {
      const node = change.kind === "announced" ? change.holder.node : change.node;
      const holder = change.kind === "announced" ? change.holder : null;
      this.#pushed.set(node, { holder, at });
      this.#latest = merged(this.#latest, node, holder);
    }
    if (change.kind === "announced") this.#announced?.(change.holder);
  }

  /**
   * Calls `announced` with each holder a push announces from now on (one
   * listener: the transfer's). Withdrawals tell it nothing: a source running
   * ends by itself when its holder goes.
   */
  onChange(announced: (holder: Holder) => void): void {
    this.#announced = announced;
  }

  /** Settles once no refresh runs. */
  async settled(): Promise<void> {
    await this.#refreshing;
    await this.#lookup?.catch(() => {});
  }

  async #refresh(): Promise<void> {
    if (this.#lookup === undefined) {
      const at = this.#lookupAt = performance.now();
      this.#lookup = this.#options.lookup().then((holders) => {
        if (at >= this.#takenAt) this.#take(holders, at);
        return holders;
      }).finally(() => this.#lookup = undefined);
    }
    const lookup = this.#lookup;
    const outcome = await within(
      lookup.then((holders) => ({ holders }), (error: unknown) => ({ error })),
      Math.max(0, this.#lookupAt + HUNG_MS - performance.now()),
      { error: undefined as unknown },
    );
    if ("holders" in outcome) {
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

  /**
   * Takes a listing that began at `startedAt` with the changes pushed since
   * over it: a push is newer than the listing's snapshot.
   */
  #take(holders: readonly Holder[], startedAt: number): void {
    this.#takenAt = startedAt;
    let latest = this.#removedAt > startedAt ? [] : holders;
    for (const [node, { holder, at }] of this.#pushed) {
      if (at <= startedAt) this.#pushed.delete(node);
      else latest = merged(latest, node, holder);
    }
    this.#latest = latest;
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

/** The holders with `node`'s entry replaced by `holder` (added when new, dropped for null). */
function merged(holders: readonly Holder[], node: string, holder: Holder | null): Holder[] {
  const at = holders.findIndex((known) => known.node === node);
  if (at < 0) return holder === null ? [...holders] : [...holders, holder];
  const next = [...holders];
  if (holder === null) next.splice(at, 1);
  else next[at] = holder;
  return next;
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
