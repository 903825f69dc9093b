/**
 * A daemon's read-through of origin URLs, one download per cluster: the
 * object behind a URL comes from the cluster when any member holds it, and
 * from the origin only when none does. Of all daemons that miss one URL at
 * once, the one that claims it in the directory (an exclusive CREATE with
 * a lease) downloads it; the others become its downstream peers and pull
 * its pieces, from it and from each other, while it still downloads. A
 * downloader that dies stops renewing its claim; the claim expires (at
 * once, in the embedded directory, when membership declares it dead) and
 * one of the others takes over, resuming from the origin with `Range`.
 * A downloader that loses its claim (see `claim.ts`) stops and follows the
 * daemon that holds it now.
 *
 * @module
 */
import { NotFoundError, StoreUnavailableError } from "../../core/errors.ts";
import type { Peer } from "../../core/peer.ts";
import type { Meta } from "../../core/validate.ts";
import { type OriginReply, type OriginRequest, originUrl } from "../../transport/origin_fetch.ts";
import { sleep } from "../../transport/rate_limit.ts";
import type { ClusterTransport } from "../cluster_transport.ts";
import type { Directory, Holder } from "../directory.ts";
import { Assembly } from "./assembly.ts";
import { type HeldClaim, holdClaim, tryClaim } from "./claim.ts";
import { type Flight, follow } from "./follow.ts";
import { isFresh, sameRepresentation, shareable, validators } from "./freshness.ts";
import { type OriginCounts, originCounts } from "./origin_counts.ts";
import {
  askOrigin,
  ChangedBody,
  download,
  gatherBody,
  MAX_ATTEMPTS,
  type OriginTrip,
  shown,
} from "./origin_download.ts";
import { originId } from "./origin_id.ts";
import {
  originMeta,
  refreshedMeta,
  replyOf,
  requestHeaders,
  sameVersion,
  storedHeaders,
  validatorOf,
} from "./origin_meta.ts";
import { type OriginStore, peerStore } from "./origin_store.ts";
import { parseAsk, progressJson, Tracker } from "./progress.ts";
import { Revalidated } from "./revalidated.ts";
import { gather, resumeOf, spooledFrom } from "./spool_resume.ts";
import { Spool } from "./spool.ts";
import type { TransferLimits } from "../transfer_limits.ts";

/** A cluster's part in a read-through: claims, progress requests, this daemon's place. */
export interface ReadThroughCluster {
  /** The directory whose `claim` makes one download per cluster. */
  readonly directory: Directory;
  /** How progress requests reach other daemons. */
  readonly transport: ClusterTransport;
  /** This daemon as others reach it, once its HTTP server listens. */
  readonly self: () => Holder | undefined;
  /** The cluster token, for piece requests. */
  readonly token?: string | undefined;
}

/** Options of {@link ReadThrough}. */
export interface ReadThroughOptions {
  /** The peer objects are kept in (a `ClusterPeer` in a cluster). */
  readonly peer: Peer;
  /** The cluster, when the daemon is in one; without it: one download per daemon. */
  readonly cluster?: ReadThroughCluster | undefined;
  /** How long a claim lasts without renewal, in ms. Default 3000; renewed every third of it. */
  readonly claimTtl?: number;
  /** The largest body of a response not stored (an error) that is kept for its caller. */
  readonly maxUnsharedBytes?: number;
  /**
   * The largest body of no stated length taken (spooled to a file as it
   * comes, then stored): the most the peer could store. Default 1 GiB.
   */
  readonly maxBodyBytes?: number;
  /** Where bodies of no stated length are spooled. Default: the system's temporary directory. */
  readonly spoolDir?: string | undefined;
  /**
   * The daemon's transfer budget, which each object's size is reserved in
   * before its blob exists, and its download rate, which every byte from
   * the origin or from other daemons takes: those of its other transfers.
   */
  readonly limits?: TransferLimits | undefined;
  /** Where failures go. */
  readonly log?: (message: string) => void;
}

/** How long a response not to be shared (an error status) is kept for its caller, in ms. */
const UNSHARED_TTL = 60_000;
/** Rounds of claim-or-follow before a fetch gives up. */
const MAX_ROUNDS = 50;

/** The origin's answer to a revalidation that is not the stored version, until one download takes it. */
interface Answer {
  response: Response | undefined;
}

/**
 * Reads origin URLs through a peer: see the module's description.
 *
 * @example In a daemon (see `daemon/daemon.ts`)
 * ```ts ignore
 * const readThrough = new ReadThrough({ peer: clusterPeer, cluster: { directory, transport, self } });
 * const reply = await readThrough.fetch({ url: "https://example.com/model.bin", headers: [] });
 * using handle = await client.get(reply.id);
 * ```
 */
export class ReadThrough {
  readonly #store: OriginStore;
  readonly #cluster: ReadThroughCluster | undefined;
  readonly #claimTtl: number;
  readonly #maxUnshared: number;
  readonly #maxBody: number;
  readonly #spoolDir: string | undefined;
  readonly #limits: TransferLimits;
  readonly #revalidated = new Revalidated();
  readonly #log: (message: string) => void;
  readonly #tracker = new Tracker();
  readonly #flights = new Map<string, Promise<OriginReply>>();
  /** Bodies of no stated length spooled here (downloaded or pulled), by id: served to followers. */
  readonly #spools = new Map<string, Spool>();
  /** Revalidations under way: the stored head refreshed, or the origin's other answer. */
  readonly #revalidating = new Map<string, Promise<{ readonly current: Meta } | Answer>>();
  readonly #abort = new AbortController();
  /** What this read-through counted. */
  readonly counts: OriginCounts = originCounts();

  /** Creates a read-through over `options.peer`; it does not own the peer. */
  constructor(options: ReadThroughOptions) {
    this.#limits = options.limits ?? {};
    this.#store = peerStore(options.peer, this.#limits.budget);
    this.#cluster = options.cluster?.directory.claim === undefined ? undefined : options.cluster;
    this.#claimTtl = options.claimTtl ?? 3000;
    this.#maxUnshared = options.maxUnsharedBytes ?? 64 << 20;
    this.#maxBody = options.maxBodyBytes ?? 1 << 30;
    this.#spoolDir = options.spoolDir;
    this.#log = options.log ?? (() => {});
  }

  /**
   * Answers a downstream peer's progress request (`POST
   * /v1/cluster/origin/progress`) about a download this daemon leads.
   *
   * @throws {ProtocolError} For a malformed request.
   */
  progress(body: unknown): unknown {
    const answer = this.#tracker.answer(parseAsk(body));
    const piecePort = this.#cluster?.self()?.piecePort;
    return progressJson(
      answer.state === "none" || piecePort === undefined ? answer : { ...answer, piecePort },
    );
  }

  /**
   * Bytes `start` to `end` (exclusive, cut at the body's end once known) of
   * the body of `id` spooled here, for a follower (`GET
   * /v1/cluster/origin/spool/:id`), and the body's length, undefined while
   * unknown.
   *
   * @returns Undefined while they are not all here.
   * @throws {NotFoundError} When no body of `id` is spooled here.
   */
  async spoolRange(
    id: string,
    start: number,
    end: number,
  ): Promise<{ bytes: Uint8Array<ArrayBuffer>; size: number | undefined } | undefined> {
    const spool = this.#spools.get(id);
    if (spool === undefined) throw new NotFoundError(`No spooled body of ${id} here`);
    try {
      const bytes = await spool.read(start, Math.min(end, spool.size ?? end));
      return bytes && { bytes, size: spool.size };
    } catch {
      // Closed meanwhile: its object is made, or failed.
      return undefined;
    }
  }

  /**
   * The file behind bytes `start` to `end` of the body of `id` spooled here,
   * for the native GET listener to send: a read-only descriptor of it, valid
   * while the spool is; the byte after the range, cut at the body's end; the
   * body's length, undefined while unknown. Undefined when no body of it is
   * spooled here, or not all those bytes, or without the native library.
   */
  spoolFile(
    id: string,
    start: number,
    end: number,
  ): { fd: number; end: number; size: number | undefined } | undefined {
    return this.#spools.get(id)?.file(start, end);
  }

  /**
   * The object holding the response to `request`, and the response's head.
   *
   * `request.cache` as `RequestInit.cache`: `default` serves a held copy
   * while it is fresh by its headers and revalidates a stale one (a
   * conditional request; 304 keeps it); `no-cache` always revalidates;
   * `force-cache` serves any held copy; `only-if-cached` never asks the
   * origin; `reload` downloads again (once per cluster); `no-store` asks the
   * origin and shares nothing. A response that may not be stored (an
   * error, `no-store`) is kept for this caller alone, for a minute.
   *
   * @throws {NotFoundError} With `only-if-cached` when no member holds it.
   * @throws {StoreUnavailableError} When the origin cannot be reached.
   * @throws {ConflictError} When its content changed in the middle of a download.
   */
  async fetch(request: OriginRequest): Promise<OriginReply> {
    const url = originUrl(request.url);
    const id = originId(url);
    const mode = request.cache ?? "default";
    const trip: OriginTrip = {
      url,
      headers: requestHeaders(request.headers),
      counts: this.counts,
      signal: this.#abort.signal,
      rate: this.#limits.rate,
    };
    if (mode === "no-store") return await this.#unshared(trip, await askOrigin(trip));
    let stale: Meta | undefined;
    /** The answer to a revalidation that is not the stored version: the download starts from it. */
    let answered: Answer | undefined;
    if (mode !== "reload") {
      const meta = await this.#held(id);
      if (meta === undefined && mode === "only-if-cached") {
        throw new NotFoundError(`Not cached: ${shown(url)} ("only-if-cached")`);
      }
      if (meta !== undefined) {
        const stored = storedHeaders(meta);
        if (
          mode === "force-cache" || mode === "only-if-cached" ||
          (mode === "default" && isFresh(stored))
        ) {
          this.counts.origin_cluster_hits_total++;
          return replyOf(id, meta);
        }
        const conditional = validators(stored);
        if (conditional !== undefined) {
          // Revalidations of one id at once on this daemon ask the origin once.
          let asking = this.#revalidating.get(id);
          if (asking === undefined) {
            asking = (async () => {
              const answer = await askOrigin(trip, Object.fromEntries(conditional));
              if (answer.status !== 304 && !sameRepresentation(stored, answer)) {
                return { response: answer };
              }
              await answer.body?.cancel();
              this.counts.origin_not_modified_total++;
              // Still current: the stored body, with the headers the answer refreshed.
              const refreshed = refreshedMeta(meta, answer.headers);
              this.#revalidated.record(id, refreshed);
              return { current: refreshed };
            })().finally(() => this.#revalidating.delete(id));
            this.#revalidating.set(id, asking);
          }
          const revalidation = await asking;
          if ("current" in revalidation) return replyOf(id, revalidation.current);
          answered = revalidation;
        }
        stale = meta;
      }
    }
    // One flight per daemon; the claim makes it one per cluster.
    let flight = this.#flights.get(id);
    if (flight === undefined) {
      // The first caller the revalidation answered takes its answer; the others join it.
      const first = answered?.response;
      if (answered !== undefined) answered.response = undefined;
      flight = (async () => {
        // On its way here from now: `stat` says so before its size is known.
        using _expected = this.#store.expect(id);
        return await this.#single(id, trip, stale, mode === "reload", first);
      })().finally(() => this.#flights.delete(id));
      this.#flights.set(id, flight);
    } else {
      await answered?.response?.body?.cancel().catch(() => {});
    }
    return await flight;
  }

  /** Stops downloads under way and the tracker. */
  close(): void {
    this.#abort.abort(new StoreUnavailableError("The read-through is closing"));
    this.#tracker.close();
  }

  /**
   * Claims the download or follows its claimant, until one of them has the
   * object; `first`, the origin's answer to a revalidation, is the download
   * when this daemon claims it (no second request), else it is cancelled.
   */
  async #single(
    id: string,
    trip: OriginTrip,
    stale: Meta | undefined,
    reload: boolean,
    first: Response | undefined,
  ): Promise<OriginReply> {
    // What this daemon spooled or pulled, kept from one downloader to the next.
    const flight: Flight = {};
    try {
      return await this.#rounds(id, trip, stale, reload, flight, first);
    } finally {
      const spool = flight.spool;
      if (spool !== undefined) {
        if (this.#spools.get(id) === spool) this.#spools.delete(id);
        spool[Symbol.dispose]();
      }
    }
  }

  /**
   * The rounds of claim-or-follow of {@link ReadThrough.#single}: `answer`
   * goes to the first download this daemon leads, and is cancelled when
   * another daemon's download comes first.
   */
  async #rounds(
    id: string,
    trip: OriginTrip,
    stale: Meta | undefined,
    reload: boolean,
    flight: Flight,
    answer: Response | undefined,
  ): Promise<OriginReply> {
    const take = () => {
      const taken = answer;
      answer = undefined;
      return taken;
    };
    try {
      const cluster = this.#cluster;
      const self = cluster?.self();
      if (cluster === undefined || self === undefined) {
        return await this.#lead(id, trip, stale, reload, flight, take());
      }
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const holder = await tryClaim(cluster.directory, {
          id,
          self,
          ttl: this.#claimTtl,
          log: this.#log,
        });
        if (holder === undefined) {
          await sleep(20 + Math.random() * 80, trip.signal);
          continue;
        }
        if (holder.node === self.node) {
          await using claim = this.#hold(id, self);
          try {
            const signal = AbortSignal.any([trip.signal, claim.lost]);
            return await this.#lead(id, { ...trip, signal }, stale, reload, flight, take());
          } catch (error) {
            if (!claim.lost.aborted || trip.signal.aborted) throw error;
            // Another daemon downloads it now: this one follows it, in the next round.
            continue;
          }
        }
        await take()?.body?.cancel().catch(() => {});
        const reply = await follow({
          store: this.#store,
          tracker: this.#tracker,
          cluster,
          counts: this.counts,
          claimTtl: this.#claimTtl,
          log: this.#log,
          spools: this.#spools,
          spoolDir: this.#spoolDir,
          maxBody: this.#maxBody,
          flight,
          hold: () => this.#hold(id, self),
          lead: (first) => this.#lead(id, trip, undefined, true, flight, first),
        }, { id, trip, leader: holder, self });
        if (reply !== undefined) return reply;
        await sleep(20 + Math.random() * 80, trip.signal);
      }
      throw new StoreUnavailableError(`Cannot fetch ${shown(trip.url)}: no download went through`);
    } finally {
      await take()?.body?.cancel().catch(() => {});
    }
  }

  /** Holds this daemon's claim of `id` (won already), renewing it; disposing lets it go. */
  #hold(id: string, self: Holder): HeldClaim {
    return holdClaim(this.#cluster!.directory, {
      id,
      self,
      ttl: this.#claimTtl,
      log: this.#log,
    });
  }

  /**
   * Downloads `id` from the origin, as the one daemon that claimed it: from
   * `first` when given (the whole body of a version newer than the one a
   * download had begun), else with a request of its own, which resumes
   * with `Range` and `If-Range` after the spool pieces of `flight` when they
   * are the start of a body (pulled from a downloader that died).
   */
  async #lead(
    id: string,
    trip: OriginTrip,
    stale: Meta | undefined,
    reload: boolean,
    flight: Flight,
    first?: Response,
    restarts = 0,
  ): Promise<OriginReply> {
    this.#tracker.lead(id);
    let response: Response | undefined;
    try {
      if (!reload && first === undefined) {
        // Someone may have stored it meanwhile (or a newer version than the stale one).
        const meta = await this.#held(id);
        if (meta !== undefined && !sameVersion(meta, stale)) {
          this.#tracker.end(id, { error: "held already" });
          this.counts.origin_cluster_hits_total++;
          return replyOf(id, meta);
        }
      }
      const self = this.#cluster?.self();
      if (first === undefined && flight.spool !== undefined && self !== undefined) {
        // What the other followers hold past this daemon's pieces: from them, not the origin.
        await gather(id, flight.spool, flight.known, {
          transport: this.#cluster!.transport,
          token: this.#cluster!.token,
          self,
          signal: trip.signal,
          rate: trip.rate,
          counts: trip.counts,
          limit: this.#maxBody,
        });
      }
      const resume = first === undefined ? resumeOf(flight.spool) : undefined;
      if (resume !== undefined) trip.counts.origin_resumes_total++;
      const answer = response = first ?? await askOrigin(trip, resume?.headers);
      let meta: Meta;
      let from = 0;
      if (resume !== undefined && answer.status === 206) {
        // The rest of the version held: its pieces stay, its response is the first's.
        from = spooledFrom(answer, resume.at, trip);
        meta = resume.meta;
      } else {
        if (!shareable(trip.headers, answer)) {
          this.#tracker.end(id, { error: `the origin answered ${answer.status}` });
          return await this.#unshared(trip, answer);
        }
        meta = originMeta(trip.url, answer);
        // Another version: what was spooled is not of it.
        const held = flight.spool;
        if (held?.meta !== undefined && !sameVersion(held.meta, meta)) held.reset(meta);
      }
      const length = answer.headers.get("content-length");
      const known = from === 0 && length !== null && /^\d+$/.test(length) &&
        flight.spool?.holdsAny !== true;
      // A body of no stated length goes to a file as it comes (its followers pull its
      // pieces from there meanwhile); its length known, to the blob.
      const spool = known ? undefined : (flight.spool ??= Spool.open(this.#spoolDir));
      if (spool !== undefined) {
        spool.meta = meta;
        this.#spools.set(id, spool);
        this.#tracker.spooling(id, spool, meta);
        await spool.take(trip, answer, this.#maxBody, from);
      }
      const size = spool?.size ?? Number(length);
      const validator = validatorOf(meta);
      const record = await this.#store.assemble(id, size, meta, async (view, relay) => {
        const assembly = new Assembly(id, size, view);
        relay(assembly);
        this.#tracker.downloading(id, assembly, meta);
        try {
          if (spool === undefined) await download(assembly, answer, trip, validator);
          else await spool.fill(assembly);
          return await assembly.record();
        } finally {
          await assembly.settled();
        }
      }, trip.signal);
      this.#tracker.end(id, { digest: record.digest });
      return replyOf(id, meta);
    } catch (error) {
      // The origin has another version now: the download starts over with its answer.
      if (error instanceof ChangedBody && restarts < MAX_ATTEMPTS) {
        return await this.#lead(id, trip, undefined, true, flight, error.response, restarts + 1);
      }
      this.#tracker.end(id, { error: (error as Error).message });
      // Refused before its body was read (no room in the budget): the connection goes.
      await response?.body?.cancel().catch(() => {});
      if (error instanceof ChangedBody) await error.response.body?.cancel().catch(() => {});
      throw error;
    }
  }

  /** The metadata of `id` when held, as its last revalidation here left it. */
  async #held(id: string): Promise<Meta | undefined> {
    const meta = await this.#store.held(id);
    return meta === undefined ? undefined : this.#revalidated.current(id, meta);
  }

  /** Keeps a response not to be shared for its caller alone, for a minute. */
  async #unshared(trip: OriginTrip, response: Response): Promise<OriginReply> {
    const body = await gatherBody(trip, response, this.#maxUnshared);
    const meta = originMeta(trip.url, response);
    return replyOf(await this.#store.keep(body, meta, UNSHARED_TTL), meta);
  }
}
