/**
 * A download of a body of no stated length taken over by a daemon that
 * pulled the start of it into its spool: it first pulls, from the other
 * followers of the downloader that died, the spool pieces they hold past
 * its own (each checked against the digest the downloader published), then
 * asks the origin for the rest only, `Range` from the end of the spool
 * pieces it holds in a row, guarded by `If-Range` on the version's
 * validator, so that a body that changed meanwhile comes whole (a 200) and
 * is spooled from its start instead.
 *
 * @module
 */
import { StoreUnavailableError } from "../../core/errors.ts";
import type { Meta } from "../../core/validate.ts";
import type { Holder } from "../directory.ts";
import { digestLike } from "../piece_digest.ts";
import { hasPiece } from "../swarm/bitfield.ts";
import { type OriginTrip, shown } from "./origin_download.ts";
import { validatorOf } from "./origin_meta.ts";
import { type Spool, SPOOL_PIECE } from "./spool.ts";
import { spoolPiece, type SpoolPullOptions } from "./spool_pull.ts";

/** Where a resume of a spooled body begins, and what it asks. */
export interface SpoolResume {
  /** The byte the range starts at: the end of the spool pieces held in a row. */
  readonly at: number;
  /** The response the pieces held are the body of. */
  readonly meta: Meta;
  /** `Range` and `If-Range`. */
  readonly headers: Record<string, string>;
}

/**
 * The resume of the body `spool` holds the start of; undefined when it
 * holds none, or its version has no validator (a range could then splice
 * two versions: the whole body is asked, and the pieces held compared).
 */
export function resumeOf(spool: Spool | undefined): SpoolResume | undefined {
  const meta = spool?.meta;
  const at = spool?.contiguous ?? 0;
  const validator = meta === undefined ? undefined : validatorOf(meta);
  if (meta === undefined || validator === undefined || at === 0) return undefined;
  return { at, meta, headers: { range: `bytes=${at}-`, "if-range": validator } };
}

/**
 * Where the body of a 206 answer to a resume from byte `at` starts: `at`.
 *
 * @throws {StoreUnavailableError} When its `Content-Range` starts elsewhere.
 */
export function spooledFrom(response: Response, at: number, trip: OriginTrip): number {
  const range = response.headers.get("content-range") ?? "";
  const start = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(range)?.[1];
  if (start === undefined || Number(start) !== at) {
    trip.counts.origin_failures_total++;
    throw new StoreUnavailableError(
      `Cannot fetch ${shown(trip.url)}: the origin answered a range from byte ${at} with ${range}`,
    );
  }
  return at;
}

/**
 * Pulls into `spool`, from the `known` followers of the downloader that
 * died, the spool pieces past those it holds in a row that they hold, in
 * order, each checked against the digest the downloader published, until
 * one is held by none of them: the origin is then asked for
 * what lies past all of them. Nothing when the version has no validator
 * (the whole body is asked again anyway).
 */
export async function gather(
  id: string,
  spool: Spool,
  known: { readonly digests: readonly string[]; readonly peers: readonly Holder[] } | undefined,
  options: SpoolPullOptions,
): Promise<void> {
  if (known === undefined || spool.meta === undefined || validatorOf(spool.meta) === undefined) {
    return;
  }
  for (let piece = spool.contiguous / SPOOL_PIECE;; piece++) {
    if (spool.has(piece)) continue;
    const digest = known.digests[piece] ?? "";
    if (digest === "" || !await pulled(id, spool, piece, digest, known.peers, options)) return;
  }
}

/**
 * Whether spool piece `piece` came from one of `peers`, its bytes
 * `digest`'s: those that listed it first, then the others (their lists were
 * as the downloader last heard them; one that has it not yet answers 503).
 */
async function pulled(
  id: string,
  spool: Spool,
  piece: number,
  digest: string,
  peers: readonly Holder[],
  options: SpoolPullOptions,
): Promise<boolean> {
  const listed = (peer: Holder) => peer.pieces !== undefined && hasPiece(peer.pieces, piece);
  for (const peer of [...peers.filter(listed), ...peers.filter((peer) => !listed(peer))]) {
    try {
      const bytes = await spoolPiece(id, piece, peer, options, options.signal);
      if (bytes !== undefined && await digestLike(bytes, digest) === digest) {
        await spool.put(piece, bytes, digest);
        return true;
      }
    } catch (error) {
      if (options.signal.aborted) throw error;
    }
  }
  return false;
}
