/**
 * A downstream peer of a read-through: the daemons that lost the claim of a
 * URL pull its pieces from the winner and from each other while it
 * downloads, and one of them takes the download over when the winner dies.
 * What a follower pulled outlives the downloader it came from: a body of no
 * stated length in the flight's spool (see `spool_pull.ts`), one of known
 * length in its blob, which the follower keeps pulling into from the next
 * downloader, or downloads the rest of itself when it took over. A next
 * downloader of another version (the origin's body changed) makes every
 * follower start over with it.
 *
 * @module
 */
import { ConflictError, StoreUnavailableError } from "../../core/errors.ts";
import type { Meta } from "../../core/validate.ts";
import type { OriginReply } from "../../transport/origin_fetch.ts";
import { sleep } from "../../transport/rate_limit.ts";
import type { ContentRecord, Holder } from "../directory.ts";
import { Assembly } from "./assembly.ts";
import { type HeldClaim, tryClaim } from "./claim.ts";
import type { OriginCounts } from "./origin_counts.ts";
import { ChangedBody, download, type OriginTrip, shown } from "./origin_download.ts";
import { replyOf, sameVersion, validatorOf } from "./origin_meta.ts";
import type { OriginStore } from "./origin_store.ts";
import { pull, pullPieces } from "./piece_pull.ts";
import { Spool } from "./spool.ts";
import { pullSpool } from "./spool_pull.ts";
import { askJson, MISSES, parseProgress, type Progress, type Tracker } from "./progress.ts";
import type { ReadThroughCluster } from "./read_through.ts";

/** Rounds of following before a fetch gives up. */
const MAX_ROUNDS = 50;

/** What one fetch of an id on this daemon keeps from one round of claim-or-follow to the next. */
export interface Flight {
  /** A body of no stated length, spooled or pulled here: its pieces, kept across downloaders. */
  spool?: Spool;
  /** Whether this daemon was counted as a downstream peer of the id already. */
  followed?: boolean;
  /** The last spool digests its downloader published, and the other followers with their pieces. */
  known?: { readonly digests: readonly string[]; readonly peers: readonly Holder[] };
}

/** What a follower works with: its read-through's parts. */
export interface FollowContext {
  readonly store: OriginStore;
  readonly tracker: Tracker;
  readonly cluster: ReadThroughCluster;
  readonly counts: OriginCounts;
  readonly claimTtl: number;
  readonly log: (message: string) => void;
  /** Holds this daemon's claim of the id (won already), renewed until disposed, then let go. */
  readonly hold: () => HeldClaim;
  /** Leads the download under the claim held, from the origin's answer `first`. */
  readonly lead: (first: Response) => Promise<OriginReply>;
  /** This fetch's own state across rounds. */
  readonly flight: Flight;
  /** The spools of this daemon, by id, served to other followers. */
  readonly spools: Map<string, Spool>;
  /** Where a spool goes. Default: the system's temporary directory. */
  readonly spoolDir: string | undefined;
  /** The most bytes of a body of no stated length taken here. */
  readonly maxBody: number;
}

/** The next downloader is of another version than the pieces pulled: start over. */
class Superseded extends Error {}

/**
 * Pulls `id` from the daemon that claimed its download, and from the
 * other daemons following it; takes the download over when the leader
 * dies and this daemon wins the claim.
 *
 * @returns Undefined when the leader went without a copy to pull, or
 *   another version came (try again).
 */
export async function follow(
  context: FollowContext,
  { id, trip, leader, self }: { id: string; trip: OriginTrip; leader: Holder; self: Holder },
): Promise<OriginReply | undefined> {
  const { store, tracker, cluster, counts, flight } = context;
  const pulling = {
    transport: cluster.transport,
    token: cluster.token,
    self,
    signal: trip.signal,
    rate: trip.rate,
    counts: trip.counts,
  };
  const followed = () => {
    if (flight.followed) return;
    flight.followed = true;
    counts.origin_downstream_total++;
  };
  let progress: Progress | undefined;
  let spool: Spool | undefined;
  for (let misses = 0; misses < MISSES;) {
    try {
      progress = parseProgress(
        await cluster.transport.send(
          leader.address,
          "origin/progress",
          askJson(id, self),
          2000,
          trip.signal,
        ),
      );
    } catch {
      misses++;
      continue;
    }
    if (progress.state === "downloading" && progress.size !== undefined) break;
    if (progress.state !== "starting") break;
    if (progress.spoolDigests !== undefined) {
      // Its length unknown: its spool pieces into this daemon's spool until it is known.
      spool = flight.spool ??= Spool.open(context.spoolDir);
      context.spools.set(id, spool);
      followed();
      progress = await pullSpool(id, spool, leader, {
        ...pulling,
        limit: context.maxBody,
        seen: (digests, peers) => flight.known = { digests, peers },
      });
      break;
    }
    await sleep(25, trip.signal);
  }
  // Done while this daemon pulled its spooled pieces: the rest of them from the downloader.
  const resume = spool !== undefined && progress?.state === "done";
  if (progress?.state === "done" && !resume) {
    const meta = await store.held(id);
    if (meta !== undefined) {
      counts.origin_cluster_hits_total++;
      return replyOf(id, meta);
    }
  }
  if (
    (progress?.state !== "downloading" && !resume) || progress?.size === undefined ||
    progress.meta === undefined
  ) {
    return undefined;
  }
  followed();
  const { size, meta } = progress;
  // Pieces of another version than the blob's are not filled in from the spool.
  const filling = spool?.meta !== undefined && sameVersion(spool.meta, meta) ? spool : undefined;
  let led = false;
  let hold: HeldClaim | undefined;
  let record: ContentRecord;
  try {
    record = await store.assemble(id, size, meta, async (view, relay) => {
      const assembly = new Assembly(id, size, view);
      relay(assembly);
      try {
        // What came while the body was spooled: from this daemon's own file.
        await filling?.fill(assembly, false);
        let current = leader;
        // The other followers as a downloader last listed them: a pull that found it gone lists none.
        let peers: readonly Holder[] = [];
        for (let round = 0; round < MAX_ROUNDS; round++) {
          const outcome = await pull(assembly, current, { ...pulling, meta });
          if ("digest" in outcome) {
            const record = await assembly.record();
            if (record.digest !== outcome.digest) {
              throw new ConflictError(
                `Cannot fetch ${
                  shown(trip.url)
                }: its pieces verify but the whole is not ${outcome.digest}`,
              );
            }
            return record;
          }
          if ("changed" in outcome) throw new Superseded(outcome.changed);
          context.log(`The download of ${id} by ${current.node} ended: ${outcome.gone}`);
          if (outcome.peers.length > 0) peers = outcome.peers;
          const holder = await tryClaim(cluster.directory, {
            id,
            self,
            ttl: context.claimTtl,
            log: context.log,
          });
          if (holder?.node !== self.node) {
            current = holder ?? current;
            await sleep(50, trip.signal);
            continue;
          }
          hold = context.hold();
          // A download that finished lets its claim go, and one slowed down may lose it: a
          // follower granted the claim goes to the origin only when no other follower leads or
          // led the download, and no member holds the object.
          const next = await leading(id, peers, pulling);
          if (next !== undefined || await sealedElsewhere(cluster, id, self)) {
            await hold[Symbol.asyncDispose]();
            hold = undefined;
            if (next === undefined) throw new Superseded(`${id} is held by another member now`);
            current = next;
            continue;
          }
          led = true;
          try {
            const signal = AbortSignal.any([trip.signal, hold.lost]);
            return await takeOver(context, { assembly, meta, trip: { ...trip, signal }, peers });
          } catch (error) {
            if (!hold.lost.aborted || trip.signal.aborted) throw error;
            // Another daemon holds the claim now: its download is followed, into the pieces here.
            tracker.end(id, { error: (error as Error).message });
            led = false;
            current = hold.holder ?? current;
            await hold[Symbol.asyncDispose]();
            hold = undefined;
          }
        }
        throw new StoreUnavailableError(`Cannot fetch ${shown(trip.url)}: no download finished`);
      } finally {
        await assembly.settled();
      }
    }, trip.signal);
  } catch (error) {
    if (error instanceof Superseded) {
      context.log(`The download of ${id} starts over: ${error.message}`);
      return undefined;
    }
    // The origin has another version: the download starts over, its blob, with it.
    if (led && error instanceof ChangedBody) return await context.lead(error.response);
    if (led) tracker.end(id, { error: (error as Error).message });
    throw error;
  } finally {
    await hold?.[Symbol.asyncDispose]();
  }
  if (led) tracker.end(id, { digest: record.digest });
  return replyOf(id, meta);
}

/**
 * The first of `peers` (other followers) that leads a download of `id`,
 * under way or finished: this daemon follows it instead of downloading.
 */
async function leading(
  id: string,
  peers: readonly Holder[],
  { transport, self, signal }: {
    transport: ReadThroughCluster["transport"];
    self: Holder;
    signal: AbortSignal;
  },
): Promise<Holder | undefined> {
  const answers = await Promise.all(peers.map(async (peer) => {
    try {
      const progress = parseProgress(
        await transport.send(peer.address, "origin/progress", askJson(id, self), 2000, signal),
      );
      return progress.state === "none" || progress.state === "failed" ? undefined : peer;
    } catch {
      return undefined;
    }
  }));
  const found = answers.find((peer) => peer !== undefined);
  return found === undefined ? undefined : { node: found.node, address: found.address };
}

/** Whether a member other than `self` holds `id` sealed, as the directory says. */
async function sealedElsewhere(
  cluster: ReadThroughCluster,
  id: string,
  self: Holder,
): Promise<boolean> {
  const entry = await cluster.directory.lookup(id).catch(() => undefined);
  return entry?.holders.some((holder) => holder.node !== self.node) ?? false;
}

/**
 * Takes the download over into `assembly`, which holds the pieces this
 * daemon pulled: the pieces the other followers have come from them, the
 * rest from the origin, from the end of what any of them has, a run of
 * missing pieces at a time, each range guarded by `If-Range`.
 *
 * @throws {ChangedBody} When the origin has another version now.
 */
async function takeOver(
  context: FollowContext,
  { assembly, meta, trip, peers }: {
    assembly: Assembly;
    meta: Meta;
    trip: OriginTrip;
    peers: readonly Holder[];
  },
): Promise<ContentRecord> {
  const { tracker, cluster } = context;
  tracker.lead(assembly.id);
  tracker.downloading(assembly.id, assembly, meta);
  const from = assembly.frontier(peers.map((peer) => peer.pieces ?? new Uint8Array(0)));
  const validator = validatorOf(meta);
  // The holes stop with the download: none may write into a view after its blob went.
  const stop = new AbortController();
  const holes = pullPieces(assembly, () => tracker.peers(assembly.id), {
    token: cluster.token,
    signal: AbortSignal.any([trip.signal, stop.signal]),
    rate: trip.rate,
    counts: trip.counts,
    wanted: (piece) => piece < from,
    patience: 1000,
  });
  try {
    await download(assembly, undefined, trip, validator, from);
  } catch (error) {
    stop.abort();
    await holes.catch(() => {});
    throw error;
  }
  await holes;
  await download(assembly, undefined, trip, validator);
  return await assembly.record();
}
