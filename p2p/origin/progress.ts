/**
 * The downloader of an origin URL as its downstream peers see it: each
 * asks it, every 100 ms, `POST /v1/cluster/origin/progress` with the pieces
 * it has, and hears the object's size and metadata, the piece digests
 * known so far, the whole digest once done, and the other downstream peers
 * with their pieces (the downloader is their tracker), so they pull pieces
 * from it and from each other while it still downloads.
 *
 * @module
 */
import { ProtocolError } from "../../core/errors.ts";
import type { Meta } from "../../core/validate.ts";
import type { Holder } from "../directory.ts";
import {
  digest,
  type HolderJson,
  holderJson,
  objectId,
  parseHolder,
  piecePort,
} from "../directory/wire.ts";
import { object } from "../membership/messages.ts";
import { bitfieldOf, decodeBitfield, encodeBitfield, hasPiece } from "../swarm/bitfield.ts";
import type { Assembly } from "./assembly.ts";
import type { Spool } from "./spool.ts";

/** Where a download led here stands. */
export type ProgressState = "starting" | "downloading" | "done" | "failed";

/** The downloader's answer. */
export interface Progress {
  /** `none` when this daemon leads no download of the id. */
  readonly state: ProgressState | "none";
  /** The object's size, once the origin answered. */
  readonly size?: number;
  /** Its metadata (the origin's status and headers). */
  readonly meta?: Meta;
  /** The pieces the downloader has, as a bitfield. */
  readonly pieces?: Uint8Array;
  /** Piece digests, `""` for those not known yet. */
  readonly digests?: readonly string[];
  /** The whole object's digest, once done. */
  readonly digest?: string;
  /**
   * While a body of no stated length is spooled (`starting`): the digests of
   * its spool pieces, in order, `""` for those the downloader does not hold
   * (yet: one that took a download over holds those it had pulled) (see
   * `spool.ts`). With them, `meta` is the response they are the body of.
   */
  readonly spoolDigests?: readonly string[];
  /** The other downstream peers, with their pieces. */
  readonly peers?: readonly Holder[];
  /** Why a failed download failed. */
  readonly error?: string;
  /**
   * The downloader's piece port, on the host of the address it was asked at
   * (see `p2p/swarm/piece_ports.ts`): a claim in Redis keeps only a node and
   * an address.
   */
  readonly piecePort?: number;
}

/** How often a follower asks the downloader for its progress. */
export const POLL_MS = 100;
/** Progress requests that fail in a row before the downloader counts as gone. */
export const MISSES = 3;
/** How long a follower does not ask a source that failed, in ms. */
export const BENCH_MS = 2000;

/** How long a downstream peer is listed after its last progress request. */
const PEER_TTL_MS = 2000;
/**
 * How long a piece is offered to its one downstream peer before it is
 * offered to all, when peers ask every {@link POLL_MS}: three polls (that
 * peer hears of it, says it has it, another hears of that) and its transfer.
 * Peers that ask later stretch it ({@link relayGrace}).
 */
const RELAY_GRACE_MS = 600;
/** The most a late-asking peer stretches {@link RELAY_GRACE_MS}, as Lifeguard bounds its own. */
const GRACE_STRETCH_MAX = 8;
/** How long a finished or failed download still answers. */
const KEEP_MS = 30_000;

interface Led {
  state: ProgressState;
  assembly?: Assembly;
  spool?: Spool;
  meta?: Meta;
  digest?: string;
  error?: string;
  /** When it ended, in epoch ms. */
  ended?: number;
  /** When each piece was first offered, in epoch ms (0: not yet). */
  seen?: number[];
  readonly peers: Map<string, Follower>;
}

/** A downstream peer as the downloader knows it. */
interface Follower {
  holder: Holder;
  /** When it last asked, in the tracker's ms. */
  seen: number;
  /** How long it lets pass between asks, smoothed; {@link POLL_MS} at first. */
  gap: number;
}

/** The downloads this daemon leads, and what it tells their downstream peers. */
export class Tracker {
  readonly #led = new Map<string, Led>();
  readonly #clock: () => number;

  /** @param clock Milliseconds now. Default `Date.now`. */
  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
  }

  /** Starts leading `id`: asked before the origin answers, it says `starting`. */
  lead(id: string): void {
    this.#sweep();
    this.#led.set(id, { state: "starting", peers: this.#led.get(id)?.peers ?? new Map() });
  }

  /**
   * The origin answered with a body of no stated length, the response `meta`
   * describes (its validator names the version): it is spooled into `spool`.
   */
  spooling(id: string, spool: Spool, meta: Meta): void {
    const led = this.#led.get(id);
    if (led !== undefined) Object.assign(led, { spool, meta });
  }

  /** The origin answered: pieces arrive into `assembly`. */
  downloading(id: string, assembly: Assembly, meta: Meta): void {
    const led = this.#led.get(id);
    if (led === undefined) return;
    Object.assign(led, { state: "downloading", assembly, meta });
  }

  /** Ends leading `id`: done with `digest`, or failed with `error`; answered a while longer. */
  end(id: string, outcome: { digest: string } | { error: string }): void {
    const led = this.#led.get(id);
    if (led === undefined) return;
    if ("digest" in outcome) Object.assign(led, { state: "done", digest: outcome.digest });
    else Object.assign(led, { state: "failed", error: outcome.error });
    led.ended = this.#clock();
  }

  /** Answers a downstream peer's progress request (a parsed {@link ProgressAsk}). */
  answer(ask: ProgressAsk): Progress {
    const led = this.#led.get(ask.id);
    if (led === undefined) return { state: "none" };
    const now = this.#clock();
    const known = led.peers.get(ask.holder.node);
    const gap = known === undefined ? POLL_MS : 0.75 * known.gap + 0.25 * (now - known.seen);
    led.peers.set(ask.holder.node, { holder: ask.holder, seen: now, gap });
    const peers: Holder[] = [];
    for (const [node, { holder, seen }] of led.peers) {
      if (now - seen > PEER_TTL_MS) led.peers.delete(node);
      else if (node !== ask.holder.node) peers.push(holder);
    }
    const assembly = led.assembly;
    return {
      state: led.state,
      ...(assembly === undefined ? {} : {
        size: assembly.size,
        digests: assembly.digests,
        pieces: this.#offered(led, assembly, ask.holder.node, now),
      }),
      ...(led.spool === undefined || assembly !== undefined
        ? {}
        : { spoolDigests: led.spool.digests }),
      ...(led.meta === undefined ? {} : { meta: led.meta }),
      ...(led.digest === undefined ? {} : { digest: led.digest }),
      ...(led.error === undefined ? {} : { error: led.error }),
      peers,
    };
  }

  /**
   * The pieces the downloader offers `node`, as BitTorrent's super-seeding
   * does: each new piece to one downstream peer (by turns), from which the
   * others take it; any piece no other peer has relayed within
   * {@link RELAY_GRACE_MS} to everyone, so nothing stalls on a slow peer.
   * After the download, every piece no other peer says it has: those it
   * takes from them, as it would have had the download lasted longer.
   */
  #offered(led: Led, assembly: Assembly, node: string, now: number): Uint8Array {
    const elsewhere = (piece: number) => {
      for (const [other, { holder }] of led.peers) {
        if (other !== node && holder.pieces !== undefined && hasPiece(holder.pieces, piece)) {
          return true;
        }
      }
      return false;
    };
    if (led.state === "done") return bitfieldOf(assembly.count, (piece) => !elsewhere(piece));
    const followers = [...led.peers.keys()].sort();
    const seen = led.seen ??= new Array(assembly.count).fill(0);
    const asker = led.peers.get(node)!;
    return bitfieldOf(assembly.count, (piece) => {
      if (!assembly.has(piece)) return false;
      if (seen[piece] === 0) seen[piece] = now;
      const chosen = followers[piece % followers.length]!;
      if (chosen === node) return true;
      return now - seen[piece]! >= relayGrace(led.peers.get(chosen)!, asker) && !elsewhere(piece);
    });
  }

  /** The downstream peers of `id` heard from lately, with their pieces. */
  peers(id: string): Holder[] {
    const now = this.#clock();
    const peers: Holder[] = [];
    for (const { holder, seen } of this.#led.get(id)?.peers.values() ?? []) {
      if (now - seen <= PEER_TTL_MS) peers.push(holder);
    }
    return peers;
  }

  /** Forgets every download. */
  close(): void {
    this.#led.clear();
  }

  /** Forgets downloads that ended a while ago. */
  #sweep(): void {
    const now = this.#clock();
    for (const [id, led] of this.#led) {
      if (led.ended !== undefined && now - led.ended > KEEP_MS) this.#led.delete(id);
    }
  }
}

/**
 * How long a piece is offered to `chosen` alone before `asker` may have it:
 * {@link RELAY_GRACE_MS} while both ask every {@link POLL_MS}, longer when
 * they ask later (a loaded host): `chosen` hears of the piece and says it
 * has it a gap of its own apart each, and `asker` hears of that one of its
 * own later. A piece would otherwise go from the downloader to every peer
 * whenever peers are slow, which loads it most when the cluster is busiest.
 */
function relayGrace(chosen: Follower, asker: Follower): number {
  const late = 2 * Math.max(0, chosen.gap - POLL_MS) + Math.max(0, asker.gap - POLL_MS);
  return Math.min(RELAY_GRACE_MS + late, GRACE_STRETCH_MAX * RELAY_GRACE_MS);
}

/** A downstream peer's progress request: the id, and itself with its pieces. */
export interface ProgressAsk {
  readonly id: string;
  readonly holder: Holder;
}

/** The JSON of a progress request. */
export function askJson(id: string, holder: Holder): { id: string; holder: HolderJson } {
  return { id, holder: holderJson(holder) };
}

/** Parses a progress request. */
export function parseAsk(value: unknown): ProgressAsk {
  const fields = object(value, "origin progress request");
  return { id: objectId(fields.id), holder: parseHolder(fields.holder) };
}

/** The JSON of an answer. */
export function progressJson(progress: Progress): unknown {
  const { pieces, peers, ...rest } = progress;
  return {
    ...rest,
    ...(pieces === undefined ? {} : { pieces: encodeBitfield(pieces) }),
    ...(peers === undefined ? {} : { peers: peers.map(holderJson) }),
  };
}

const STATES = ["none", "starting", "downloading", "done", "failed"];

/** Parses an answer: a malformed one is a {@link ProtocolError}. */
export function parseProgress(value: unknown): Progress {
  const fields = object(value, "origin progress");
  if (!STATES.includes(fields.state as string)) {
    throw new ProtocolError(`Malformed origin progress state: ${String(fields.state)}`);
  }
  const size = fields.size;
  if (size !== undefined && (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0)) {
    throw new ProtocolError("Malformed origin progress size");
  }
  const digests = fields.digests;
  if (
    digests !== undefined &&
    (!Array.isArray(digests) ||
      !digests.every((item) => item === "" || digest(item, "piece digest") === item))
  ) {
    throw new ProtocolError("Malformed origin progress digests");
  }
  const meta = fields.meta;
  if (meta !== undefined && (typeof meta !== "object" || meta === null || Array.isArray(meta))) {
    throw new ProtocolError("Malformed origin progress meta");
  }
  const spoolDigests = fields.spoolDigests;
  if (
    spoolDigests !== undefined &&
    (!Array.isArray(spoolDigests) ||
      !spoolDigests.every((item) => item === "" || digest(item, "spool piece digest") === item))
  ) {
    throw new ProtocolError("Malformed origin progress spool digests");
  }
  const pieces = typeof fields.pieces === "string" ? decodeBitfield(fields.pieces) : undefined;
  return {
    state: fields.state as Progress["state"],
    ...(pieces === undefined ? {} : { pieces }),
    ...(size === undefined ? {} : { size }),
    ...(meta === undefined ? {} : { meta: meta as Meta }),
    ...(digests === undefined ? {} : { digests }),
    ...(spoolDigests === undefined ? {} : { spoolDigests }),
    ...(fields.digest === undefined ? {} : { digest: digest(fields.digest, "origin digest") }),
    ...(typeof fields.error === "string" ? { error: fields.error } : {}),
    ...(fields.piecePort === undefined ? {} : { piecePort: piecePort(fields.piecePort) }),
    peers: Array.isArray(fields.peers) ? fields.peers.map(parseHolder) : [],
  };
}
