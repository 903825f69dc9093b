/**
 * A downstream peer of a read-through: the daemons that lost the claim of a
 * URL pull its pieces from the winner and from each other while it
 * downloads, and one of them takes the download over when the winner dies.
 *
 * @module
 */
import { ConflictError, StoreUnavailableError } from "../../core/errors.ts";
import type { OriginReply } from "../../transport/origin_fetch.ts";
import { sleep } from "../../transport/rate_limit.ts";
import type { ContentRecord, Holder } from "../directory.ts";
import { Assembly } from "./assembly.ts";
import type { OriginCounts } from "./origin_counts.ts";
import { download, type OriginTrip, shown } from "./origin_download.ts";
import { replyOf, validatorOf } from "./origin_meta.ts";
import type { OriginStore } from "./origin_store.ts";
import { pull, pullPieces } from "./piece_pull.ts";
import { Spool } from "./spool.ts";
import { pullSpool } from "./spool_pull.ts";
import { askJson, MISSES, parseProgress, type Progress, type Tracker } from "./progress.ts";
import type { ReadThroughCluster } from "./read_through.ts";

/** Rounds of following before a fetch gives up. */
const MAX_ROUNDS = 50;

/** What a follower works with: its read-through's parts. */
export interface FollowContext {
  readonly store: OriginStore;
  readonly tracker: Tracker;
  readonly cluster: ReadThroughCluster;
  readonly counts: OriginCounts;
  readonly claimTtl: number;
  readonly log: (message: string) => void;
  /** Runs `work` under this daemon's claim of the id, renewed, let go after. */
  readonly claimed: <T>(work: () => Promise<T>) => Promise<T>;
  /** The spools of this daemon, by id, served to other followers. */
  readonly spools: Map<string, Spool>;
  /** Where a spool goes. Default: the system's temporary directory. */
  readonly spoolDir: string | undefined;
  /** The most bytes of a body of no stated length taken here. */
  readonly maxBody: number;
}

/**
 * Pulls `id` from the daemon that claimed its download, and from the
 * other daemons following it; takes the download over when the leader
 * dies and this daemon wins the claim.
 *
 * @returns Undefined when the leader went without a copy to pull (try again).
 */
export async function follow(
  context: FollowContext,
  { id, trip, leader, self }: { id: string; trip: OriginTrip; leader: Holder; self: Holder },
): Promise<OriginReply | undefined> {
  // A body of no stated length, pulled while the downloader spools it: kept until its blob is.
  const spooled: { spool?: Spool } = {};
  try {
    return await followWith(context, { id, trip, leader, self }, spooled);
  } finally {
    const spool = spooled.spool;
    if (spool !== undefined) {
      if (context.spools.get(id) === spool) context.spools.delete(id);
      spool[Symbol.dispose]();
    }
  }
}

/** {@link follow}, with a spool of its own (made in `spooled`) for a body of no stated length. */
async function followWith(
  context: FollowContext,
  { id, trip, leader, self }: { id: string; trip: OriginTrip; leader: Holder; self: Holder },
  spooled: { spool?: Spool },
): Promise<OriginReply | undefined> {
  const { store, tracker, cluster, counts } = context;
  const pulling = {
    transport: cluster.transport,
    token: cluster.token,
    self,
    signal: trip.signal,
    rate: trip.rate,
    counts: trip.counts,
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
    if (progress.spoolDigests !== undefined && !context.spools.has(id)) {
      // Its length unknown: its spool pieces into this daemon's spool until it is known.
      spool = spooled.spool = await Spool.open(context.spoolDir);
      context.spools.set(id, spool);
      counts.origin_downstream_total++;
      progress = await pullSpool(id, spool, leader, { ...pulling, limit: context.maxBody });
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
  if (spool === undefined) counts.origin_downstream_total++;
  const { size, meta } = progress;
  let led = false;
  let record: ContentRecord;
  try {
    record = await store.assemble(id, size, meta, async (view, relay) => {
      const assembly = new Assembly(id, size, view);
      relay(assembly);
      try {
        // What came while the body was spooled: from this daemon's own file.
        await spool?.fill(assembly, false);
        let current = leader;
        for (let round = 0; round < MAX_ROUNDS; round++) {
          const outcome = await pull(assembly, current, pulling);
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
          context.log(`The download of ${id} by ${current.node} ended: ${outcome.gone}`);
          const holder = await cluster.directory.claim!(id, self, context.claimTtl);
          if (holder.node !== self.node) {
            current = holder;
            await sleep(50, trip.signal);
            continue;
          }
          // Taken over: pieces the other followers have come from them, the
          // rest from the origin, from the end of what any of them has.
          led = true;
          const peers = outcome.peers;
          return await context.claimed(async () => {
            tracker.lead(id);
            tracker.downloading(id, assembly, meta);
            const from = assembly.frontier(peers.map((peer) => peer.pieces ?? new Uint8Array(0)));
            const validator = validatorOf(meta);
            const holes = pullPieces(assembly, () => tracker.peers(id), {
              token: cluster.token,
              signal: trip.signal,
              rate: trip.rate,
              counts: trip.counts,
              wanted: (piece) => piece < from,
              patience: 1000,
            });
            await Promise.all([download(assembly, undefined, trip, validator, from), holes]);
            await download(assembly, undefined, trip, validator);
            return await assembly.record();
          });
        }
        throw new StoreUnavailableError(`Cannot fetch ${shown(trip.url)}: no download finished`);
      } finally {
        await assembly.settled();
      }
    }, trip.signal);
  } catch (error) {
    if (led) tracker.end(id, { error: (error as Error).message });
    throw error;
  }
  if (led) tracker.end(id, { digest: record.digest });
  return replyOf(id, meta);
}
