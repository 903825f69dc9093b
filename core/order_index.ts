/**
 * A peer's holdings sorted by their place in put order (`Holding.order`),
 * so that a page of a list starts by binary search instead of reading every
 * object.
 *
 * @module
 */
import type { Holding } from "./holding.ts";

/** Holdings a chunk holds before it splits: inserts and removals move at most this many. */
const CHUNK = 1_024;

/**
 * Holdings in put order, in chunks of at most {@link CHUNK}. Orders are
 * given increasing, so a new holding is mostly appended; one taken in from
 * beside with an earlier order is put in place.
 */
export class OrderIndex {
  readonly #chunks: Holding[][] = [];

  /** Adds `holding`, whose order no other holding here has. */
  add(holding: Holding): void {
    const chunks = this.#chunks;
    const last = chunks[chunks.length - 1];
    if (last === undefined) {
      chunks.push([holding]);
      return;
    }
    if (holding.order > last[last.length - 1]!.order) {
      if (last.length < CHUNK) last.push(holding);
      else chunks.push([holding]);
      return;
    }
    const c = this.#chunkOf(holding.order);
    const chunk = chunks[c]!;
    chunk.splice(firstAfter(chunk, holding.order - 1), 0, holding);
    if (chunk.length > 2 * CHUNK) chunks.splice(c + 1, 0, chunk.splice(CHUNK));
  }

  /** Removes `holding` if it is here. */
  delete(holding: Holding): void {
    const c = this.#chunkOf(holding.order);
    const chunk = this.#chunks[c];
    if (chunk === undefined) return;
    const at = firstAfter(chunk, holding.order - 1);
    if (chunk[at] !== holding) return;
    chunk.splice(at, 1);
    if (chunk.length === 0) this.#chunks.splice(c, 1);
  }

  /** Removes every holding. */
  clear(): void {
    this.#chunks.length = 0;
  }

  /** The holdings whose order is `order` or later, in put order, from the first. */
  *from(order: number): Generator<Holding> {
    const chunks = this.#chunks;
    for (let c = this.#chunkOf(order), at = -1; c < chunks.length; c++, at = 0) {
      const chunk = chunks[c]!;
      for (let i = at < 0 ? firstAfter(chunk, order - 1) : 0; i < chunk.length; i++) {
        yield chunk[i]!;
      }
    }
  }

  /** The chunk where a holding at `order` is or goes: the last whose first is at or before it. */
  #chunkOf(order: number): number {
    const chunks = this.#chunks;
    let low = 0;
    let high = chunks.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (chunks[mid]![0]!.order <= order) low = mid;
      else high = mid - 1;
    }
    return low;
  }
}

/** The index of the first holding of sorted `chunk` whose order is after `order`. */
function firstAfter(chunk: readonly Holding[], order: number): number {
  let low = 0;
  let high = chunk.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (chunk[mid]!.order <= order) low = mid + 1;
    else high = mid;
  }
  return low;
}
