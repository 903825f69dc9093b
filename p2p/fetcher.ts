/**
 * Fetch on miss: an object's holders from the directory, its pieces from
 * them into a CREATE blob of the replicas' peer, verified, then sealed.
 *
 * @module
 */
import { CapacityExceededError, ConflictError, NotFoundError } from "../core/errors.ts";
import type { Acquired, Peer } from "../core/peer.ts";
import type { ObjectInfo } from "../core/object.ts";
import { checkRecord } from "./content.ts";
import { checkBinding } from "./record_binding.ts";
import type { ClusterCounts } from "./cluster_metrics.ts";
import type { ClusterLog } from "./cluster_options.ts";
import type { ContentRecord, Directory, Holder, HolderWatch } from "./directory.ts";
import { healthy, metaFrom } from "./holder_http.ts";
import type { Members } from "./members.ts";
import { blocks, SourceError, sourceKey } from "./source_error.ts";
import { askHolding } from "./directory/holding.ts";
import { HolderListing } from "./holder_listing.ts";
import type { Blocklist } from "./swarm/blocklist.ts";
import type { TransferBudget } from "./swarm/transfer_budget.ts";
import { createLanding, type Landing, MemfdLanding } from "./swarm/landing.ts";
import { AnnouncePace } from "./swarm/announce_pace.ts";
import { UNREACHABLE_MS } from "./swarm/piece_ports.ts";
import { Transfer, type TransferOptions } from "./transfer.ts";
import type { PartialObject, RelayedPieces, RelaySink } from "../transport/http/upload_gate.ts";

/** Milliseconds a partial holder has to say what it holds while the directory is away. */
const ASK_TIMEOUT_MS = 1000;

/** What a fetch tells its cluster peer. */
export interface FetchHooks {
  /** Awaited before the CREATE: an older copy of the id is still going. */
  before(): Promise<void>;
  /** The copy is sealed (its lease not yet released). */
  sealed(record: ContentRecord): void;
  /** Optional: its size is known (its record found), before its room and blob are. */
  sized?(size: number): void;
  /**
   * Optional: the transfer begins, into a CREATE of `object` (its size,
   * metadata, digest).
   */
  started?(object: ObjectInfo, transfer: ArrivingTransfer): void;
  /** Optional: see `TransferOptions.onPrefix`. */
  prefix?(bytes: number): void;
}

/** A transfer under way as a local reader of its object sees it. */
export interface ArrivingTransfer {
  /** Copies verified bytes `start` to `end`; undefined once the transfer ended. */
  read(start: number, end: number): Uint8Array | undefined;
  /** Fetches pieces in order from now on, so the verified prefix grows steadily. */
  inOrder(): void;
}

/** What a {@link Fetcher} works with; the cluster peer's own. */
export interface FetcherOptions {
  readonly replicas: Peer;
  readonly directory: Directory;
  readonly members: Members | undefined;
  readonly node: string;
  readonly token: string | undefined;
  readonly maxObjectSize: number;
  readonly transfer: Pick<TransferOptions, "inFlight" | "pieceTimeout" | "maxSources" | "rate">;
  readonly blocklist: Blocklist;
  /** Bytes this daemon's fetches may hold at once. Default: unbounded. */
  readonly budget?: TransferBudget | undefined;
  readonly log: ClusterLog;
  /** This daemon as a holder, once its address is known: a daemon with one relays pieces. */
  readonly self: () => Holder | undefined;
  readonly counts: ClusterCounts;
  /** Aborted when the peer closes. */
  readonly signal: AbortSignal;
  /** Runs background work the peer awaits on close. */
  readonly later: (work: Promise<void>) => void;
}

/** Fetches objects on miss for a {@link ClusterPeer}. */
export class Fetcher {
  readonly #replicas: Peer;
  readonly #directory: Directory;
  readonly #members: Members | undefined;
  readonly #node: string;
  readonly #token: string | undefined;
  readonly #maxObjectSize: number;
  readonly #transfer: FetcherOptions["transfer"];
  readonly #blocklist: Blocklist;
  readonly #budget: TransferBudget | undefined;
  readonly #log: ClusterLog;
  readonly #self: () => Holder | undefined;
  readonly #counts: ClusterCounts;
  readonly #signal: AbortSignal;
  readonly #later: (work: Promise<void>) => void;

  /** Withdrawals of dead holders under way, by `id node`. */
  readonly #withdrawing = new Set<string>();
  /** Transfers under way, by id: their verified pieces are served to others. */
  readonly #partials = new Map<string, Transfer>();
  /** The memfd each transfer lands in, when its blob has one: relays send from it by fd. */
  readonly #landing = new WeakMap<Transfer, number>();
  /** The content digest of each transfer under way, by id. */
  readonly #digests = new Map<string, string>();
  /** Where transfers landing in a memfd are handed, to serve their verified pieces off this thread. */
  #relaySink: RelaySink | undefined;

  /** Creates a fetcher working with the peer's parts. */
  constructor(options: FetcherOptions) {
    this.#replicas = options.replicas;
    this.#directory = options.directory;
    this.#members = options.members;
    this.#node = options.node;
    this.#token = options.token;
    this.#maxObjectSize = options.maxObjectSize;
    this.#transfer = options.transfer;
    this.#blocklist = options.blocklist;
    this.#budget = options.budget;
    this.#log = options.log;
    this.#self = options.self;
    this.#counts = options.counts;
    this.#signal = options.signal;
    this.#later = options.later;
  }

  /**
   * Fetches `id` from its holders into a sealed copy in `replicas`.
   *
   * @returns The content record the copy was verified against.
   * @throws {NotFoundError} When no holder could send it.
   */
  async fetch(id: string, notFound: NotFoundError, hooks: FetchHooks): Promise<ContentRecord> {
    const entry = await this.#directory.lookup(id);
    const gone = this.#gone();
    const holders = ordered(
      entry?.holders.filter((holder) => this.#worthAsking(id, holder, gone)) ?? [],
    );
    if (entry === undefined || holders.length === 0) {
      this.#counts.cluster_misses_total++;
      throw notFound;
    }
    let record: ContentRecord;
    let bound: boolean;
    try {
      record = checkRecord(entry, this.#maxObjectSize);
      const binding = checkBinding(record, this.#token);
      if (binding === "forged") {
        this.#counts.cluster_verify_failures_total++;
        throw new Error("its binding does not match its digests (altered, or another token)");
      }
      bound = binding === "bound";
    } catch (error) {
      this.#counts.cluster_misses_total++;
      if (error instanceof CapacityExceededError) throw error;
      this.#log.warn((error as Error).message);
      throw new NotFoundError(`Cannot fetch object ${id}: ${(error as Error).message}`);
    }
    hooks.sized?.(record.size);
    // Room in the transfer budget before any blob exists: waits, or refuses typed.
    const reservation = await this.#budget?.reserve(record.size, `object ${id}`, this.#signal);
    let created: Acquired | undefined;
    let landing: Landing | undefined;
    let transfer: Transfer | undefined;
    let sealed = false;
    /** Stops serving the transfer's verified pieces to others. Idempotent. */
    let endPartial = () => {};
    /** The transfer's verified pieces as the relay sink serves them. */
    let relayed: RelayedPieces | undefined;
    const failures: string[] = [];
    let first: readonly Holder[] | undefined = holders;
    /**
     * Changes of the holders pushed by the directory while the transfer
     * runs: a partial holder's new pieces are known at once, without a
     * lookup. Taken once the transfer asks for holders past its first
     * listing: one that ends in its first round (a small object) takes none.
     */
    let watch: HolderWatch | undefined;
    const listing = new HolderListing({
      initial: holders,
      live: () => watch?.live === true,
      lookup: () => this.#current(record),
      ask: (holder) => askHolding(holder, record, this.#token, ASK_TIMEOUT_MS, this.#signal),
      away: (error) =>
        this.#log.warn(
          `The directory does not answer (${
            error instanceof Error ? error.message : "too slow"
          }): the partial holders of ${id} known are asked what they hold`,
        ),
    });
    const sources = {
      more: async (stranded?: boolean) => {
        if (first === undefined && watch === undefined) {
          watch = this.#directory.watch?.(id, (change) => {
            // A holder announcing now is alive: only this daemon itself is not worth asking.
            if (change.kind === "announced") {
              if (change.digest !== record.digest || change.holder.node === this.#node) return;
            } else if (change.kind === "withdrawn" && change.node === this.#node) return;
            listing.apply(change);
          });
        }
        const next = first ?? await listing.next(stranded);
        first = undefined;
        return next;
      },
      failed: (error: SourceError) => this.#sourceFailed(id, error),
      onChange: (announced: (holder: Holder) => void) => listing.onChange(announced),
    };
    try {
      // The metadata from the first holder that answers; the pieces from all of them.
      for (const holder of holders) {
        if (created !== undefined) break;
        if (this.#blocklist.blocked(sourceKey(holder))) {
          failures.push(`Holder ${holder.node} at ${holder.address}: on the blocklist`);
          first = first?.filter((other) => other !== holder);
          continue;
        }
        try {
          const meta = await metaFrom(holder, record, this.#token, this.#signal);
          await hooks.before();
          ({ created, landing } = await createLanding(this.#replicas, id, record.size, meta));
        } catch (error) {
          if (!(error instanceof SourceError)) throw error;
          failures.push(error.message);
          first = first?.filter((other) => other !== holder);
          this.#sourceFailed(id, error);
        }
      }
      if (created !== undefined) {
        transfer = new Transfer(record, landing!, {
          token: this.#token,
          ...this.#transfer,
          blocklist: this.#blocklist,
          budget: this.#budget,
          whole: !bound,
          onBytes: (bytes) => this.#counts.cluster_fetch_bytes_total += bytes,
          onPiecePortUnreachable: (holder, reason) => {
            this.#counts.cluster_piece_port_unreachable_total++;
            this.#log.warn(
              `Holder ${holder.node}'s piece port ${holder.piecePort} does not answer (${reason}): ` +
                `its pieces are asked at ${holder.address} for ${UNREACHABLE_MS / 1000} s`,
            );
          },
          ...(hooks.prefix === undefined ? {} : { onPrefix: hooks.prefix }),
          onPiece: (piece) => relayed?.verified(piece),
        });
        this.#partials.set(id, transfer);
        const fd = created.blobs[0]?.localFd;
        if (fd !== undefined) this.#landing.set(transfer, fd);
        relayed = fd === undefined
          ? undefined
          : this.#relaySink?.relay(id, fd, record.size, record.pieceSize);
        this.#digests.set(id, record.digest);
        const running = transfer;
        endPartial = () => {
          relayed?.end();
          if (this.#partials.get(id) !== running) return;
          // Before the view closes: no partial read may touch it after.
          this.#partials.delete(id);
          this.#digests.delete(id);
          running.endLending();
        };
        hooks.started?.({ ...created.object, digest: record.digest }, {
          read: (start, end) =>
            this.#partials.get(id) === running ? running.copyVerified(start, end) : undefined,
          inOrder: () => running.inOrder(),
        });
        try {
          await this.#relaying(record, transfer, listing, transfer.run(sources, this.#signal));
        } finally {
          // Pieces landed in a memfd of their own, read through a read-only
          // mapping that keeps no seal out, are served on through the seal
          // until the sealed copy is readable here (below): no asker meets a
          // gap between the last piece and the seal. A writable view (no
          // memfd) must close before the seal, and ends lending now.
          if (!(landing instanceof MemfdLanding) || transfer.missing > 0) endPartial();
          // A question to a holder still out ends by itself: the peer's close awaits it.
          this.#later(listing.settled());
        }
        failures.push(...transfer.failures);
      }
      if (transfer === undefined || transfer.missing > 0) {
        this.#counts.cluster_misses_total++;
        throw new NotFoundError(
          `Cannot fetch object ${id}: no holder could send it (${failures.join("; ")})`,
        );
      }
      if (!await transfer.verifyWhole()) {
        this.#counts.cluster_verify_failures_total++;
        this.#counts.cluster_misses_total++;
        throw new NotFoundError(
          `Cannot fetch object ${id}: its pieces verify but the whole is not ${record.digest}`,
        );
      }
      landing!.close();
      await this.#replicas.seal(created!.lease.id);
      sealed = true;
      await this.#replicas.recordDigest?.(created!.lease.id, record.digest);
      hooks.sealed(record);
    } finally {
      watch?.[Symbol.dispose]();
      endPartial();
      await transfer?.close();
      landing?.close();
      reservation?.release();
      if (created !== undefined) {
        const lease = created.lease.id;
        // Nothing unverified stays: an unsealed CREATE is discarded.
        await (sealed ? this.#replicas.release(lease) : this.#replicas.discard(lease))
          .catch(() => {});
      }
    }
    return record;
  }

  /** Hands each transfer landing in a memfd from now on to `sink` (undefined: to none). */
  relayTo(sink: RelaySink | undefined): void {
    this.#relaySink = sink;
  }

  /**
   * The verified bytes of an object on its way here, for a partial read by
   * another daemon.
   *
   * @returns Undefined when no transfer of `id` is under way.
   */
  partial(id: string): PartialObject | undefined {
    const transfer = this.#partials.get(id);
    if (transfer === undefined) return undefined;
    const fd = this.#landing.get(transfer);
    return {
      size: transfer.size,
      read: (start, end) => transfer.copyVerified(start, end),
      lend: (start, end) => transfer.lendVerified(start, end),
      ...(fd === undefined ? {} : { fd }),
    };
  }

  /**
   * The pieces of content `digest` of `id` on their way here, as this daemon
   * announces them (see {@link Transfer.bitfield}).
   *
   * @returns Undefined when no transfer of that content is under way.
   */
  pieces(id: string, digest: string): Uint8Array | undefined {
    return this.#digests.get(id) === digest ? this.#partials.get(id)?.bitfield() : undefined;
  }

  /**
   * Awaits `running` while announcing this daemon as a partial holder of the
   * record, with the pieces it has and those on their way, as soon as they
   * change: other daemons fetch the first from it at once, and leave the
   * others to it. A transfer that fails is withdrawn.
   */
  async #relaying(
    record: ContentRecord,
    transfer: Transfer,
    listing: HolderListing,
    running: Promise<void>,
  ) {
    const self = this.#self();
    if (self === undefined) return await running;
    const stop = new AbortController();
    let announced = false;
    const stopped = new Promise<void>((resolve) =>
      stop.signal.addEventListener("abort", () => resolve(), { once: true })
    );
    const announcing = (async () => {
      const pace = new AnnouncePace();
      let failing = false;
      while (!stop.signal.aborted && transfer.missing > 0) {
        // Taken before the bitfield is read: a change from now on settles it.
        const next = transfer.changed;
        const pieces = transfer.bitfield();
        const progress = { verified: transfer.verified, wholeAnswers: transfer.wholeAnswers };
        const live = listing.live;
        const wait = pace.wait(pieces, progress, performance.now(), live);
        if (wait === Infinity) {
          // Nothing new to tell. With pushes, only a piece verified or a whole
          // holder's answer wakes this (a relay's pieces coming go with it):
          // not each push of another receiver's pieces.
          await Promise.race([
            pace.quiet(live) ? transfer.news(progress.verified + 1, progress.wholeAnswers) : next,
            stopped,
          ]);
          continue;
        }
        if (wait > 0) {
          // The moment it is due, or the progress that makes it due now, or
          // the stop: not each change meanwhile (requests, pushed sources).
          const { promise, resolve } = Promise.withResolvers<void>();
          const timer = setTimeout(resolve, wait);
          const due = pace.due(live);
          await Promise.race([
            promise,
            stopped,
            ...(due === undefined ? [] : [transfer.news(due.verified, due.wholeAnswers)]),
          ]);
          clearTimeout(timer);
          continue;
        }
        pace.told(pieces, progress, performance.now());
        announced = true;
        this.#counts.cluster_piece_announces_total++;
        try {
          // When a lookup is due, the announce answers for it.
          const due = listing.wantsListing();
          const startedAt = performance.now();
          const listed = await this.#directory.announce(record, { ...self, pieces }, {
            existing: true,
            ...(due ? { listing: true } : {}),
          });
          if (due && listed !== undefined) {
            listing.offer(this.#worthListing(record, listed), startedAt);
          }
          failing = false;
        } catch (error) {
          // Removed or replaced meanwhile: the transfer's own end tells. The
          // directory away: said once, and the next change is announced again.
          if (!(error instanceof NotFoundError || error instanceof ConflictError) && !failing) {
            failing = true;
            this.#log.warn(`Cannot announce pieces of ${record.id}: ${(error as Error).message}`);
          }
        }
      }
    })();
    try {
      await running;
    } finally {
      stop.abort();
      await announcing;
      if (announced && transfer.missing > 0) {
        this.#later(this.#directory.withdraw(record.id, this.#node));
      }
    }
  }

  /**
   * Holders of the record's content as the directory lists them now, in
   * random order: holders come and go during a transfer.
   */
  async #current(record: ContentRecord): Promise<Holder[]> {
    const directory = this.#directory;
    const holders = directory.holders === undefined
      ? await directory.lookup(record.id).then((entry) =>
        entry?.digest === record.digest ? entry.holders : undefined
      )
      : await directory.holders(record.id, record.digest);
    return this.#worthListing(record, holders ?? []);
  }

  /** The holders of `record` worth asking, in random order, partial holders first. */
  #worthListing(record: ContentRecord, holders: readonly Holder[]): Holder[] {
    const gone = this.#gone();
    return ordered(holders.filter((holder) => this.#worthAsking(record.id, holder, gone)));
  }

  /**
   * The members membership knows to be dead or gone, by node: read once a
   * lookup (a transfer's come many a second), not once a holder listed.
   */
  #gone(): ReadonlySet<string> {
    const gone = new Set<string>();
    for (const member of this.#members?.list() ?? []) {
      if (member.state === "dead" || member.state === "left") gone.add(member.node);
    }
    return gone;
  }

  /**
   * Whether to fetch from `holder`: not this daemon, and not a member that
   * membership knows to be dead or gone (`gone`; withdrawn, then).
   */
  #worthAsking(id: string, holder: Holder, gone: ReadonlySet<string>): boolean {
    if (holder.node === this.#node) return false;
    if (!gone.has(holder.node)) return true;
    // Transfers look holders up again and again: one withdrawal at a time.
    const key = `${id} ${holder.node}`;
    if (this.#withdrawing.has(key)) return false;
    this.#withdrawing.add(key);
    this.#counts.cluster_withdrawn_total++;
    this.#later(
      this.#directory.withdraw(id, holder.node).finally(() => this.#withdrawing.delete(key)),
    );
    return false;
  }

  #sourceFailed(id: string, error: SourceError): void {
    this.#counts.cluster_source_failures_total++;
    if (error.fault === "digest") this.#counts.cluster_verify_failures_total++;
    if (blocks(error.fault)) this.#counts.cluster_blocked_total++;
    this.#log.warn(`Skipping a holder of object ${id}: ${error.message}`);
    if (error.fault === "digest") return;
    // Without the object (dropped, evicted): withdrawn. Cut off, silent,
    // unreachable or failing: withdrawn if it does not answer a health check either.
    this.#later((async () => {
      if (error.fault !== "missing" && await healthy(error.holder, this.#signal)) return;
      this.#counts.cluster_withdrawn_total++;
      this.#log.warn(
        `Withdrawing holder ${error.holder.node} of object ${id}: ${
          error.fault === "missing" ? "it does not hold it" : "it does not answer"
        }`,
      );
      await this.#directory.withdraw(id, error.holder.node);
    })());
  }
}

/**
 * The holders in random order, so readers spread over them, but partial
 * holders first: a transfer starts its sources in this order, and a whole
 * holder started before the partial ones are counted would be asked for
 * pieces already on their way to them (sent twice by the first holder).
 */
function ordered(holders: Holder[]): Holder[] {
  return shuffled(holders).sort((a, b) =>
    Number(a.pieces === undefined) - Number(b.pieces === undefined)
  );
}

/** The items in random order. */
function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
