/**
 * A downstream peer of an origin download: pieces pulled from the
 * downloader and from the other downstream peers it lists, while it still
 * downloads. Each piece is checked against the digest the downloader
 * published for it, and the whole against its final digest.
 *
 * @module
 */
import type { ClusterTransport } from "../cluster_transport.ts";
import type { ContentRecord, Holder } from "../directory.ts";
import { pieceAlgorithm } from "../piece_digest.ts";
import { SourceError, sourceKey } from "../source_error.ts";
import { hasPiece } from "../swarm/bitfield.ts";
import { checkPiece, requestPieces } from "../swarm/piece_request.ts";
import { RangeClient } from "../swarm/range_client.ts";
import { sleep, type TokenBucket } from "../../transport/rate_limit.ts";
import type { Assembly } from "./assembly.ts";
import type { OriginCounts } from "./origin_counts.ts";
import type { Meta } from "../../core/validate.ts";
import { sameVersion } from "./origin_meta.ts";
import { askJson, BENCH_MS, MISSES, parseProgress, POLL_MS, type Progress } from "./progress.ts";

/** What a pull needs. */
export interface PullOptions {
  /** How progress requests reach the downloader. */
  readonly transport: ClusterTransport;
  /** The cluster token, for piece requests. */
  readonly token: string | undefined;
  /** This daemon, as other downstream peers reach it. */
  readonly self: Holder;
  /** Ends the pull. */
  readonly signal: AbortSignal;
  /** Piece requests at once. Default 4. */
  readonly lanes?: number;
  /** The daemon's download rate. Default: unlimited. */
  readonly rate?: TokenBucket | undefined;
  /** Where the bytes pulled are counted. */
  readonly counts?: OriginCounts | undefined;
  /** The response the pieces are the body of: a downloader of another version is not pulled from. */
  readonly meta?: Meta | undefined;
}

/**
 * How the pull ended: every piece in and the whole digest known; the
 * downloader gone; or the downloader of another version than the pieces
 * held (another size, validator or piece digest: start over).
 */
export type PullOutcome =
  | { readonly digest: string }
  | { readonly gone: string; readonly peers: readonly Holder[] }
  | { readonly changed: string };

/**
 * Pulls the pieces of `assembly` from `leader` (the daemon that claimed the
 * download) and the peers it lists.
 *
 * @returns The whole digest once every piece is verified and the download
 *   is done; or why the leader is gone (failed, dead, or leading nothing),
 *   with the peers it last listed.
 */
export async function pull(
  assembly: Assembly,
  leader: Holder,
  options: PullOptions,
): Promise<PullOutcome> {
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  let sources: Holder[] = [];
  let final: string | undefined;
  let gone: string | undefined;
  let changed: string | undefined;
  const poll = async () => {
    let misses = 0;
    while (!signal.aborted) {
      try {
        const reply = parseProgress(
          await options.transport.send(
            leader.address,
            "origin/progress",
            askJson(assembly.id, { ...options.self, pieces: assembly.bitfield() }),
            2000,
            signal,
          ),
        );
        misses = 0;
        if (reply.state === "none" || reply.state === "failed") {
          gone = reply.error ?? `${leader.node} leads no download of it`;
          break;
        }
        // Pieces known by the other algorithm's digests: checked here, not pulled again.
        for (const [piece, digest] of (reply.digests ?? []).entries()) {
          const known = assembly.digests[piece];
          if (digest !== "" && known !== "" && known !== digest) {
            await assembly.retake(piece, digest);
          }
        }
        changed = otherVersion(assembly, reply, options.meta, leader.node);
        if (changed !== undefined) break;
        reply.digests?.forEach((digest, piece) => {
          if (digest !== "" && assembly.digests[piece] === "") assembly.digests[piece] = digest;
        });
        sources = [
          {
            ...leader,
            ...(reply.piecePort === undefined ? {} : { piecePort: reply.piecePort }),
            pieces: reply.pieces ?? new Uint8Array(0),
          },
          ...(reply.peers ?? []).filter((peer) => peer.node !== options.self.node),
        ];
        if (reply.state === "done") final = reply.digest;
        if (final !== undefined && assembly.complete) break;
      } catch (error) {
        if (signal.aborted) break;
        if (++misses >= MISSES) {
          gone = `${leader.node} does not answer: ${(error as Error).message}`;
          break;
        }
      }
      await sleep(POLL_MS, signal).catch(() => {});
    }
    stop.abort();
  };
  await Promise.all([
    poll(),
    pullPieces(assembly, () => sources, { ...options, signal, leader: leader.node }),
  ]);
  if (options.signal.aborted) throw options.signal.reason;
  if (final !== undefined && assembly.complete) return { digest: final };
  if (changed !== undefined) return { changed };
  return {
    gone: gone ?? "the download ended",
    peers: sources.filter((source) => source.node !== leader.node),
  };
}

/**
 * Why the download `reply` describes is of another version than the
 * pieces of `assembly`, if it is: another size, another validator than
 * `meta`'s, or another digest for a piece held.
 */
function otherVersion(
  assembly: Assembly,
  reply: Progress,
  meta: Meta | undefined,
  node: string,
): string | undefined {
  if (reply.size !== undefined && reply.size !== assembly.size) {
    return `${node} downloads ${reply.size} bytes, not ${assembly.size}`;
  }
  if (reply.meta !== undefined && meta !== undefined && !sameVersion(reply.meta, meta)) {
    return `${node} downloads another version`;
  }
  const piece =
    reply.digests?.findIndex((digest, piece) =>
      digest !== "" && assembly.digests[piece] !== "" && assembly.digests[piece] !== digest
    ) ?? -1;
  return piece < 0 ? undefined : `${node} has another piece ${piece}`;
}

/** Options of {@link pullPieces}. */
export interface PiecesOptions {
  /** The cluster token, for piece requests. */
  readonly token: string | undefined;
  /** Ends the pull. */
  readonly signal: AbortSignal;
  /** Piece requests at once. Default 4. */
  readonly lanes?: number;
  /** The daemon's download rate, which each chunk received takes. Default: unlimited. */
  readonly rate?: TokenBucket | undefined;
  /** Where the bytes pulled are counted (`origin_peer_bytes_total`). */
  readonly counts?: OriginCounts | undefined;
  /** The node asked only for pieces no other source has (the downloader). */
  readonly leader?: string;
  /** The pieces wanted. Default: all. */
  readonly wanted?: (piece: number) => boolean;
  /**
   * Milliseconds to wait while no source has a wanted piece before giving
   * up. Default: until `signal`.
   */
  readonly patience?: number;
}

/**
 * Requests missing pieces with known digests from `sources()` (partial
 * holders with bitfields), each checked against its digest, until every
 * wanted piece is in.
 */
export async function pullPieces(
  assembly: Assembly,
  sources: () => readonly Holder[],
  options: PiecesOptions,
): Promise<void> {
  // A lane that fails stops the others: every lane has ended before this returns.
  const failed = new AbortController();
  const signal = AbortSignal.any([options.signal, failed.signal]);
  const wanted = options.wanted ?? (() => true);
  // As a transfer's: native connections, at the sources' piece ports where they have them.
  const client = new RangeClient();
  const record: ContentRecord = {
    id: assembly.id,
    size: assembly.size,
    digest: "",
    pieceSize: assembly.pieceSize,
    pieceDigests: assembly.digests,
  };
  const inflight = new Set<number>();
  const benched = new Map<string, number>();
  let idleSince: number | undefined;
  const done = () => {
    for (let piece = 0; piece < assembly.count; piece++) {
      if (wanted(piece) && !assembly.has(piece)) return false;
    }
    return true;
  };

  /** A missing piece with a known digest, and a source for it: others before the leader. */
  const choose = (): { piece: number; source: Holder } | undefined => {
    const now = Date.now();
    const usable = sources().filter((source) =>
      source.pieces !== undefined && (benched.get(sourceKey(source)) ?? 0) <= now
    );
    const offset = Math.floor(Math.random() * Math.max(1, assembly.count));
    let fallback: { piece: number; source: Holder } | undefined;
    for (let i = 0; i < assembly.count; i++) {
      const piece = (offset + i) % assembly.count;
      if (
        !wanted(piece) || assembly.has(piece) || inflight.has(piece) ||
        assembly.digests[piece] === ""
      ) continue;
      const holders = usable.filter((source) => hasPiece(source.pieces!, piece));
      const peers = holders.filter((source) => source.node !== options.leader);
      if (peers.length > 0) {
        return { piece, source: peers[Math.floor(Math.random() * peers.length)]! };
      }
      fallback ??= holders[0] === undefined ? undefined : { piece, source: holders[0] };
    }
    return fallback;
  };

  const lane = async () => {
    while (!done() && !signal.aborted) {
      const pick = choose();
      if (pick === undefined) {
        if (options.patience !== undefined && inflight.size === 0) {
          idleSince ??= Date.now();
          if (Date.now() - idleSince > options.patience) return;
        }
        await Promise.race([assembly.changed, sleep(POLL_MS / 2, signal)]).catch(() => {});
        continue;
      }
      idleSince = undefined;
      const { piece, source } = pick;
      inflight.add(piece);
      try {
        const { start, end } = assembly.span(piece);
        // The piece's digest, when taken as it landed (natively): not hashed again.
        let known: string | undefined;
        const landed = await requestPieces({
          record,
          piece,
          count: 1,
          holder: source,
          target: assembly.view,
          at: start,
          client,
          token: options.token,
          signal,
          onChunk: async (bytes) => {
            await options.rate?.take(bytes, signal);
            if (options.counts !== undefined) options.counts.origin_peer_bytes_total += bytes;
            return !signal.aborted;
          },
          // No rate limit to pace the bytes: a piece in one native call.
          step: options.rate === undefined ? assembly.pieceSize : undefined,
          piecePortUnreachable: () => {
            if (options.counts !== undefined) options.counts.origin_piece_port_unreachable_total++;
          },
          landed: (_piece, _from, _to, digest) => known = digest,
        });
        if (landed === 1) {
          // Its digest taken of the other algorithm's meanwhile (a next downloader): hashed again.
          const current = known !== undefined &&
            pieceAlgorithm(known) === pieceAlgorithm(assembly.digests[piece] ?? "");
          await checkPiece(
            record,
            piece,
            assembly.view.subarray(start, end),
            source,
            current ? known : undefined,
          );
          assembly.verifiedPiece(piece);
        }
      } catch (error) {
        if (!(error instanceof SourceError)) throw error;
        // Busy: asked again shortly; anything else: left alone for a while.
        benched.set(sourceKey(source), Date.now() + (error.fault === "busy" ? POLL_MS : BENCH_MS));
      } finally {
        inflight.delete(piece);
      }
    }
  };

  try {
    // Bytes land in the assembly's view on other threads: none may be under way once the
    // pull ends, as its owner may then unmap the view.
    const lanes = await Promise.allSettled(
      Array.from({ length: options.lanes ?? 4 }, () =>
        lane().catch((error) => {
          failed.abort();
          throw error;
        })),
    );
    const failure = lanes.find((lane) => lane.status === "rejected");
    if (failure !== undefined) throw failure.reason;
  } finally {
    client.close();
  }
}
