/**
 * A follower of a download whose body has no stated length: while the
 * downloader spools it (its length unknown, no blob made anywhere), the
 * follower pulls its spool pieces as their digests are published, from the
 * downloader and from the other followers, into a spool of its own
 * (`GET /v1/cluster/origin/spool/:id` with a `Range`, at a source's piece
 * port where it has one, as pieces are asked: see `piece_ports.ts`), each
 * checked against its digest. Once the body ended and the downloader made its blob, the
 * follower's blob fills from its own file and only the rest is pulled. The
 * spool outlives a downloader that dies: the pieces in it are kept for the
 * next one, as long as that one spools the same version.
 *
 * @module
 */
import { CapacityExceededError } from "../../core/errors.ts";
import type { ClusterTransport } from "../cluster_transport.ts";
import { CLUSTER_PREFIX } from "../cluster_transport.ts";
import type { Holder } from "../directory.ts";
import { digestLike } from "../piece_digest.ts";
import { sourceKey } from "../source_error.ts";
import { bitfieldOf, hasPiece } from "../swarm/bitfield.ts";
import { atPiecePort, fetchHead } from "../swarm/piece_request.ts";
import { sleep, type TokenBucket } from "../../transport/rate_limit.ts";
import type { Meta } from "../../core/validate.ts";
import { sameVersion } from "./origin_meta.ts";
import type { OriginCounts } from "./origin_counts.ts";
import { askJson, BENCH_MS, MISSES, parseProgress, POLL_MS, type Progress } from "./progress.ts";
import { type Spool, SPOOL_PIECE } from "./spool.ts";

/** What a spool pull needs. */
export interface SpoolPullOptions {
  /** How progress requests reach the downloader. */
  readonly transport: ClusterTransport;
  /** The cluster token, for piece requests. */
  readonly token: string | undefined;
  /** This daemon, as other followers reach it. */
  readonly self: Holder;
  /** Ends the pull. */
  readonly signal: AbortSignal;
  /** The daemon's download rate. Default: unlimited. */
  readonly rate?: TokenBucket | undefined;
  /** Where the bytes pulled are counted. */
  readonly counts?: OriginCounts | undefined;
  /** The most bytes the body may have here: the most the daemon stores. */
  readonly limit: number;
  /**
   * Told the downloader's spool digests and its other followers (with the
   * spool pieces they hold) at each of its answers: what a daemon that
   * takes the download over pulls from them before it asks the origin.
   */
  readonly seen?: (digests: readonly string[], peers: readonly Holder[]) => void;
}

/** Piece requests at once. */
const LANES = 3;
/** Milliseconds a spool piece may take. */
const PIECE_TIMEOUT_MS = 20_000;

/**
 * Pulls the spool pieces of `id` into `spool` while `leader` spools its body.
 *
 * @returns The downloader's first answer past spooling (its blob made, or
 *   failed, or done), or undefined when it stopped answering.
 * @throws {CapacityExceededError} When the body runs past `options.limit`.
 */
export async function pullSpool(
  id: string,
  spool: Spool,
  leader: Holder,
  options: SpoolPullOptions,
): Promise<Progress | undefined> {
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  let digests: readonly string[] = [];
  let sources: Holder[] = [];
  let ended: Progress | undefined;
  let failure: unknown;
  const poll = async () => {
    for (let misses = 0; !signal.aborted;) {
      try {
        const reply = parseProgress(
          await options.transport.send(
            leader.address,
            "origin/progress",
            askJson(id, { ...options.self, pieces: spool.bitfield() }),
            2000,
            signal,
          ),
        );
        misses = 0;
        if (reply.state !== "starting" || reply.spoolDigests === undefined) {
          ended = reply;
          break;
        }
        digests = reply.spoolDigests;
        await adopt(spool, reply.meta, digests);
        if (digests.length * SPOOL_PIECE > options.limit + SPOOL_PIECE) {
          throw new CapacityExceededError(
            `Cannot fetch ${id}: its body, of no stated length, runs past ${options.limit} bytes, the most this daemon stores (raise --capacity)`,
          );
        }
        const peers = (reply.peers ?? []).filter((peer) => peer.node !== options.self.node);
        options.seen?.(digests, peers);
        sources = [
          {
            ...leader,
            ...(reply.piecePort === undefined ? {} : { piecePort: reply.piecePort }),
            pieces: bitfieldOf(digests.length, (piece) => digests[piece] !== ""),
          },
          ...peers,
        ];
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof CapacityExceededError) {
          failure = error;
          break;
        }
        if (++misses >= MISSES) break;
      }
      await sleep(POLL_MS, signal);
    }
    stop.abort();
  };
  const benched = new Map<string, number>();
  const inflight = new Set<number>();
  const choose = (): { piece: number; source: Holder } | undefined => {
    const now = Date.now();
    const usable = sources.filter((source) => (benched.get(sourceKey(source)) ?? 0) <= now);
    for (let piece = 0; piece < digests.length; piece++) {
      if (spool.has(piece) || inflight.has(piece) || digests[piece] === "") continue;
      const holders = usable.filter((source) =>
        source.pieces !== undefined && hasPiece(source.pieces, piece)
      );
      // Other followers first: the downloader's upload goes to the origin's new bytes.
      const peers = holders.filter((source) => source.node !== leader.node);
      const source = peers[Math.floor(Math.random() * peers.length)] ?? holders[0];
      if (source !== undefined) return { piece, source };
    }
    return undefined;
  };
  const lane = async () => {
    while (!signal.aborted) {
      const pick = choose();
      if (pick === undefined) {
        await sleep(POLL_MS / 2, signal);
        continue;
      }
      const { piece, source } = pick;
      const { generation } = spool;
      inflight.add(piece);
      try {
        const bytes = await spoolPiece(id, piece, source, options, signal);
        const digest = bytes === undefined
          ? undefined
          : await digestLike(bytes, digests[piece] ?? "");
        // Of a version the spool no longer holds: dropped.
        if (spool.generation !== generation) continue;
        if (bytes !== undefined && digest !== undefined && digest === digests[piece]) {
          await spool.put(piece, bytes, digest);
        } else if (!signal.aborted) {
          benched.set(sourceKey(source), Date.now() + (bytes === undefined ? POLL_MS : BENCH_MS));
        }
      } catch {
        if (!signal.aborted) benched.set(sourceKey(source), Date.now() + BENCH_MS);
      } finally {
        inflight.delete(piece);
      }
    }
  };
  await Promise.all([poll(), ...Array.from({ length: LANES }, lane)]);
  if (failure !== undefined) throw failure;
  if (options.signal.aborted) throw options.signal.reason;
  return ended;
}

/**
 * Keeps in `spool` only the pieces of the body the downloader spools: all
 * of them go when its response (`meta`) is of another version than the
 * spool's (the origin's body changed before a takeover), and any whose
 * bytes are not those of the downloader's digest ({@link Spool.check}).
 */
async function adopt(spool: Spool, meta: Meta | undefined, digests: readonly string[]) {
  if (meta !== undefined) {
    if (spool.meta !== undefined && !sameVersion(meta, spool.meta)) spool.reset(meta);
    spool.meta = meta;
  }
  for (const [piece, digest] of digests.entries()) {
    if (digest !== "" && spool.has(piece) && spool.digests[piece] !== digest) {
      await spool.check(piece, digest);
    }
  }
}

/**
 * Spool piece `piece` of `id` from `source`.
 *
 * @returns Undefined when the source does not have it yet (503).
 * @throws When the source fails otherwise.
 */
export async function spoolPiece(
  id: string,
  piece: number,
  source: Holder,
  options: SpoolPullOptions,
  signal: AbortSignal,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const start = piece * SPOOL_PIECE;
  const headers: Record<string, string> = { range: `bytes=${start}-${start + SPOOL_PIECE - 1}` };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const url = new URL(`${source.address}${CLUSTER_PREFIX}/origin/spool/${encodeURIComponent(id)}`);
  await options.rate?.take(SPOOL_PIECE, signal);
  const deadline = AbortSignal.timeout(PIECE_TIMEOUT_MS);
  // At the source's piece port, where its native listener sends the bytes from its spool file.
  const response = await atPiecePort(
    source,
    url,
    (at, piecePort) => fetchHead(at, { headers, signal }, deadline, piecePort),
    () => {
      if (options.counts !== undefined) options.counts.origin_piece_port_unreachable_total++;
    },
  );
  if (response.status === 503) {
    await response.body?.cancel();
    return undefined;
  }
  if (response.status !== 206) {
    await response.body?.cancel();
    throw new Error(`answered ${response.status} to a spool range`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length === 0 || bytes.length > SPOOL_PIECE) {
    throw new Error(`sent ${bytes.length} bytes of a spool piece`);
  }
  if (options.counts !== undefined) options.counts.origin_peer_bytes_total += bytes.length;
  return bytes;
}
