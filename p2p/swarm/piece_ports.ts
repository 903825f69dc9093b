/**
 * Where pieces are asked of a holder: at its native piece listener (the
 * port it announced, `Holder.piecePort`, on the host of its address) when it
 * has one, where they leave with sendfile off its JS thread; else, and once
 * that port turned out unreachable from here, at its HTTP address.
 *
 * A port not yet known to answer from here is on probation: its first
 * answer must come within {@link PROBATION_MS}, so that a port a firewall
 * drops costs that wait once, not a piece's whole deadline. A port that
 * refuses, resets or stays silent on probation is not asked again for
 * {@link UNREACHABLE_MS}; the same request goes to the address at once, and
 * the holder is not blamed.
 *
 * @module
 */
import type { Holder } from "../directory.ts";

/** Milliseconds a piece port on probation has for its first answer. */
export const PROBATION_MS = 2000;
/** Milliseconds a piece port found unreachable is left alone. */
export const UNREACHABLE_MS = 30_000;
/** Ports remembered at most, each way: a cluster has far fewer members. */
const REMEMBERED_MAX = 4096;

/** Piece ports that answered from here, by `host:port`. */
const proven = new Set<string>();
/** Piece ports found unreachable, by `host:port`, to when they are left alone. */
const unreachable = new Map<string, number>();

/**
 * The URL of `url` (a request to the holder's address) at the holder's piece
 * port, or undefined to ask at `url`: no port announced, an address that is
 * not plain `http:`, or a port found unreachable lately.
 */
export function piecePortUrl(holder: Holder, url: URL): URL | undefined {
  if (holder.piecePort === undefined || url.protocol !== "http:") return undefined;
  const at = new URL(url);
  at.port = String(holder.piecePort);
  const until = unreachable.get(at.host);
  if (until !== undefined) {
    if (performance.now() < until) return undefined;
    unreachable.delete(at.host);
  }
  return at;
}

/** Whether the piece port at `url` answered from here before (then no probation). */
export function piecePortProven(url: URL): boolean {
  return proven.has(url.host);
}

/** The piece port at `url` answered. */
export function piecePortAnswered(url: URL): void {
  if (proven.has(url.host)) return;
  if (proven.size >= REMEMBERED_MAX) proven.clear();
  proven.add(url.host);
}

/** The piece port at `url` could not be reached: asked at the address for a while. */
export function piecePortUnreachable(url: URL): void {
  proven.delete(url.host);
  if (unreachable.size >= REMEMBERED_MAX) unreachable.clear();
  unreachable.set(url.host, performance.now() + UNREACHABLE_MS);
}
