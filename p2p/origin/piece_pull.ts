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
import { SourceError, sourceKey } from "../source_error.ts";
import { hasPiece } from "../swarm/bitfield.ts";
import { requestPiece } from "../swarm/piece_request.ts";
import { sleep } from "../../transport/rate_limit.ts";
import type { Assembly } from "./assembly.ts";
import { askJson, parseProgress } from "./progress.ts";

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
}

/** How the pull ended: every piece in and the whole digest known, or the downloader gone. */
export type PullOutcome = { readonly digest: string } | { readonly gone: string };

/** How often the downloader is asked for its progress. */
const POLL_MS = 100;
/** Progress requests that fail in a row before the downloader counts as gone. */
const MISSES = 3;
/** How long a source that failed is not asked, in ms. */
const BENCH_MS = 2000;

/**
 * Pulls the pieces of `assembly` from `leader` (the daemon that claimed the
 * download) and the peers it lists.
 *
 * @returns The whole digest once every piece is verified and the download
 *   is done; or why the leader is gone (failed, dead, or leading nothing).
 */
export async function pull(
  assembly: Assembly,
  leader: Holder,
  options: PullOptions,
): Promise<PullOutcome> {
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  const client = Deno.createHttpClient({});
  const record: ContentRecord = {
    id: assembly.id,
    size: assembly.size,
    digest: "",
    pieceSize: assembly.pieceSize,
    pieceDigests: assembly.digests,
  };
  let sources: Holder[] = [];
  let final: string | undefined;
  let gone: string | undefined;
  const inflight = new Set<number>();
  const benched = new Map<string, number>();
  let wake = Promise.withResolvers<void>();
  const pulse = () => {
    wake.resolve();
    wake = Promise.withResolvers<void>();
  };

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
        if (reply.size !== undefined && reply.size !== assembly.size) {
          gone = `${leader.node} downloads ${reply.size} bytes, not ${assembly.size}`;
          break;
        }
        reply.digests?.forEach((digest, piece) => {
          if (digest !== "" && assembly.digests[piece] === "") assembly.digests[piece] = digest;
        });
        const known = (holder: Holder): Holder => ({
          ...holder,
          pieces: holder.pieces ?? new Uint8Array(0),
        });
        sources = [
          known({ ...leader, ...(reply.pieces === undefined ? {} : { pieces: reply.pieces }) }),
          ...(reply.peers ?? []).filter((peer) => peer.node !== options.self.node).map(known),
        ];
        if (reply.state === "done") final = reply.digest;
        pulse();
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

  /** A missing piece with a known digest, and a source for it: other peers before the leader. */
  const choose = (): { piece: number; source: Holder } | undefined => {
    const now = Date.now();
    const usable = sources.filter((source) => (benched.get(sourceKey(source)) ?? 0) <= now);
    const offset = Math.floor(Math.random() * Math.max(1, assembly.count));
    let fallback: { piece: number; source: Holder } | undefined;
    for (let i = 0; i < assembly.count; i++) {
      const piece = (offset + i) % assembly.count;
      if (assembly.has(piece) || inflight.has(piece) || assembly.digests[piece] === "") continue;
      const holders = usable.filter((source) => hasPiece(source.pieces!, piece));
      const peer = holders.filter((source) => source.node !== leader.node);
      if (peer.length > 0) return { piece, source: peer[Math.floor(Math.random() * peer.length)]! };
      fallback ??= holders[0] === undefined ? undefined : { piece, source: holders[0] };
    }
    return fallback;
  };

  const lane = async () => {
    while (!assembly.complete && !signal.aborted) {
      const pick = choose();
      if (pick === undefined) {
        await Promise.race([wake.promise, assembly.changed, sleep(POLL_MS, signal)]).catch(
          () => {},
        );
        continue;
      }
      const { piece, source } = pick;
      const { start } = assembly.span(piece);
      inflight.add(piece);
      try {
        const ok = await requestPiece({
          record,
          piece,
          holder: source,
          target: assembly.view,
          at: start,
          client,
          token: options.token,
          signal,
        });
        if (ok) assembly.verifiedPiece(piece);
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
    await Promise.all([poll(), ...Array.from({ length: options.lanes ?? 4 }, lane)]);
  } finally {
    stop.abort();
    client.close();
  }
  if (options.signal.aborted) throw options.signal.reason;
  if (final !== undefined && assembly.complete) return { digest: final };
  return { gone: gone ?? "the download ended" };
}
