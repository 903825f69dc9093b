/**
 * The fetches on miss of a cluster peer under way: one per id however many
 * readers want it, each announced once its copy is sealed, and each followed
 * by the local readers that stream it as it arrives.
 *
 * @module
 */
import { ConflictError, NotFoundError } from "../core/errors.ts";
import type { ObjectInfo } from "../core/object.ts";
import type { ArrivingObject } from "../core/peer.ts";
import { Arrival, arrivingBody, expectedInfo, type SealedCopy } from "./arrival.ts";
import type { ClusterCounts } from "./cluster_metrics.ts";
import type { ClusterLog, ClusterPeerOptions } from "./cluster_options.ts";
import type { ContentRecord, Directory, Holder } from "./directory.ts";
import { sleep } from "../transport/rate_limit.ts";
import type { FetchedCopies } from "./fetched_copies.ts";
import { Fetcher, type FetchHooks } from "./fetcher.ts";
import { Blocklist } from "./swarm/blocklist.ts";
import type { TransferLimits } from "./transfer_limits.ts";
import type { PartialObject, RelaySink } from "../transport/http/upload_gate.ts";

/** What {@link Fetches} shares with its cluster peer. */
export interface FetchesParts {
  readonly copies: FetchedCopies;
  /** This daemon as a holder, once its address is known: only then is a copy announced. */
  readonly self: () => Holder | undefined;
  readonly counts: ClusterCounts;
  readonly log: ClusterLog;
  /** Aborted when the peer closes. */
  readonly signal: AbortSignal;
  /** Runs background work the peer awaits on close. */
  readonly later: (work: Promise<void>) => void;
  /** The daemon's transfer budget and download rate, shared with its other transfers. */
  readonly limits: TransferLimits;
}

/** Milliseconds before the first retry of a copy's announce the directory did not take. */
const ANNOUNCE_RETRY_MS = 250;
/** The longest wait between two retries. */
const ANNOUNCE_RETRY_MAX_MS = 5000;

/** Fetches under way, by id. */
export class Fetches {
  readonly #options: FetchesParts & {
    readonly fetcher: Fetcher;
    readonly directory: Directory;
  };
  readonly #running = new Map<string, Arrival>();

  /** Fetches for a cluster peer made of `options`, sharing its `parts`. */
  constructor(options: ClusterPeerOptions, parts: FetchesParts) {
    const fetcher = new Fetcher({
      replicas: options.replicas,
      directory: options.directory,
      members: options.members,
      node: options.node,
      token: options.token,
      maxObjectSize: options.maxObjectSize ?? Number.MAX_SAFE_INTEGER,
      transfer: { ...options.transfer, rate: parts.limits.rate },
      blocklist: new Blocklist(options.blockMs ?? 30_000),
      budget: parts.limits.budget,
      log: parts.log,
      self: parts.self,
      counts: parts.counts,
      signal: parts.signal,
      later: parts.later,
    });
    this.#options = { ...parts, fetcher, directory: options.directory };
  }

  /** See `ClusterPeer.partial`. */
  partial(
    id: string,
  ): PartialObject | undefined {
    return this.#options.fetcher.partial(id);
  }

  /** See `Fetcher.relayTo`. */
  relayTo(sink: RelaySink | undefined): void {
    this.#options.fetcher.relayTo(sink);
  }

  /** See `Fetcher.pieces`. */
  pieces(id: string, digest: string): Uint8Array | undefined {
    return this.#options.fetcher.pieces(id, digest);
  }

  /** Whether `id` is on its way here. */
  has(id: string): boolean {
    return this.#running.has(id);
  }

  /** What is known of `id` while it is on its way here and has no blob yet. */
  expected(id: string): ObjectInfo | undefined {
    const arrival = this.#running.get(id);
    return arrival === undefined ? undefined : expectedInfo(id, arrival.since, arrival.size);
  }

  /** Settles once every fetch under way has. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#running.values()].map((arrival) => arrival.flight));
  }

  /**
   * The fetch of `id` under way, or a new one: concurrent reads of an id
   * start one. Its flight settles once the copy is sealed and announced, or
   * rejects with `NotFoundError`.
   */
  start(id: string, notFound: NotFoundError): Arrival {
    let arrival = this.#running.get(id);
    if (arrival === undefined) {
      const flight = this.#fetch(id, notFound, {
        started: (object, transfer) => arrival!.started(object, transfer),
        sized: (size) => arrival!.sized(size),
        prefix: (bytes) => arrival!.grew(bytes),
      }).finally(() => this.#running.delete(id));
      arrival = new Arrival(flight);
      this.#running.set(id, arrival);
    }
    return arrival;
  }

  /**
   * Starts or joins the fetch of `id` and answers, once its transfer began,
   * with its bytes as they verify; see `ClusterPeer.readArriving`.
   *
   * @returns Undefined when the copy was sealed before its transfer could be streamed.
   */
  async stream(id: string): Promise<ArrivingObject | undefined> {
    const arrival = this.start(id, new NotFoundError(`No object: ${id}`));
    arrival.streamed();
    while (arrival.object === undefined) {
      const ended = await Promise.race([
        arrival.flight.then(() => true),
        arrival.changed().then(() => false),
      ]);
      if (ended) return undefined;
    }
    const object = arrival.object;
    return { object, body: arrivingBody(arrival, () => this.#sealedCopy(id, object)) };
  }

  /** Fetches `id` from its holders into a copy, or throws `NotFoundError`. */
  async #fetch(
    id: string,
    notFound: NotFoundError,
    progress: Pick<FetchHooks, "started" | "prefix" | "sized">,
  ): Promise<void> {
    const { fetcher, copies, directory, counts, log } = this.#options;
    const started = performance.now();
    const record = await fetcher.fetch(id, notFound, {
      before: () => copies.gone(id),
      sealed: (record) => copies.add(id, record.digest),
      ...progress,
    });
    const seconds = (performance.now() - started) / 1000;
    counts.cluster_fetches_total++;
    counts.cluster_fetch_seconds_total += seconds;
    log.debug(`Fetched object ${id} (${record.size} bytes) in ${seconds.toFixed(3)} s`);
    const self = this.#options.self();
    if (self === undefined) return;
    try {
      await directory.announce(record, self, { existing: true });
    } catch (error) {
      if (error instanceof NotFoundError || error instanceof ConflictError) {
        // Removed, or replaced, while it was on its way: the copy goes.
        await copies.drop(id, record.digest);
        throw new NotFoundError(`No object: ${id} (removed while it was fetched)`);
      }
      // The directory away: the copy is served as it stands, and announced once it answers.
      log.warn(
        `Cannot announce the copy of object ${id} yet (retrying): ${(error as Error).message}`,
      );
      this.#options.later(this.#announceLater(record, self));
    }
  }

  /**
   * Announces the copy of `record` until the directory takes it, backing off
   * up to {@link ANNOUNCE_RETRY_MAX_MS}; stops when the copy goes or the peer
   * closes. A directory that no longer lists the object (removed meanwhile)
   * has the copy dropped, as at the first attempt.
   */
  async #announceLater(record: ContentRecord, self: Holder): Promise<void> {
    const { copies, directory, signal } = this.#options;
    for (let wait = ANNOUNCE_RETRY_MS;; wait = Math.min(2 * wait, ANNOUNCE_RETRY_MAX_MS)) {
      await sleep(wait, signal);
      if (signal.aborted || copies.digest(record.id) !== record.digest) return;
      try {
        await directory.announce(record, self, { existing: true });
        return;
      } catch (error) {
        if (error instanceof NotFoundError || error instanceof ConflictError) {
          await copies.drop(record.id, record.digest);
          return;
        }
      }
    }
  }

  /** A READ lease on the copy of `object` just fetched, for a reader that streamed its start. */
  async #sealedCopy(id: string, object: ObjectInfo): Promise<SealedCopy> {
    const copies = this.#options.copies;
    const digest = object.digest!;
    const acquired = copies.digest(id) === digest
      ? await copies.read(id, digest, {}, false)
      : undefined;
    if (acquired === undefined) throw new NotFoundError(`No object: ${id} (removed as it arrived)`);
    const lease = acquired.lease.id;
    return { blob: acquired.blobs[0]!, release: () => copies.release(lease) ?? Promise.resolve() };
  }
}
