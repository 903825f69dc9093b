/**
 * The claims one member keeps as an owner of their keys: who holds each key,
 * since when and until when. A claim is an exclusive CREATE with a lease:
 * granted when no live claim holds the key, renewed only by its holder, gone
 * when it expires, when its holder lets go, or when its holder is known dead.
 *
 * Two holders of one key happen only when the owners they asked were
 * disjoint (views of the membership that differed on every owner). Once they
 * meet at one owner, the renewal of the holder granted first (then of the
 * lower node id) takes the claim over there: every owner applies the same
 * order to the same two grant times, so exactly one of them keeps it.
 *
 * @module
 */
import type { Holder } from "../directory.ts";
import type { Timers } from "../membership/timers.ts";

interface Held {
  readonly holder: Holder;
  readonly until: number;
  /** When its holder was granted it (its own clock); Infinity when tentative or unknown. */
  readonly since: number;
}

/** A claim asked of an owner: new, or a renewal that keeps its grant time. */
export interface ClaimAsk {
  readonly claimant: Holder;
  readonly ttl: number;
  /** When the claimant was granted the claim; absent while tentative (or from older members). */
  readonly since?: number | undefined;
  /** A renewal of a claim held within its lease: it takes over a holder granted later. */
  readonly renew?: boolean;
}

/** What an owner answers a claim: the holder now, and the holder it took over from, if any. */
export interface ClaimAnswer {
  readonly holder: Holder;
  readonly preempted?: Holder;
}

/** A claim forgotten because its holder was declared dead, and until when it would have held. */
export interface DroppedClaim {
  readonly key: string;
  readonly until: number;
}

/** Claims owned by this member. */
export class ClaimStore {
  readonly #timers: Timers;
  readonly #claims = new Map<string, Held>();

  /** @param timers The clock claims expire by. */
  constructor(timers: Timers) {
    this.#timers = timers;
  }

  /** Claims kept (expired ones included until touched). */
  get size(): number {
    return this.#claims.size;
  }

  /**
   * Grants `key` for `ttl` ms when it is free or already the claimant's, or
   * when the claimant renews a claim granted before the live holder's; else
   * leaves it: a compare-and-set.
   */
  claim(key: string, { claimant, ttl, since, renew }: ClaimAsk): ClaimAnswer {
    const now = this.#timers.now();
    const held = this.#claims.get(key);
    let preempted: Holder | undefined;
    if (held !== undefined && held.until > now && held.holder.node !== claimant.node) {
      if (renew !== true || since === undefined || !before(since, claimant.node, held)) {
        return { holder: held.holder };
      }
      preempted = held.holder;
    }
    this.#claims.set(key, { holder: claimant, until: now + ttl, since: since ?? Infinity });
    if (this.#claims.size > 4096) this.#sweep(now);
    return preempted === undefined ? { holder: claimant } : { holder: claimant, preempted };
  }

  /** The live holder of `key`, if any. */
  holder(key: string): Holder | undefined {
    const held = this.#claims.get(key);
    return held !== undefined && held.until > this.#timers.now() ? held.holder : undefined;
  }

  /** Lets `key` go when `node` holds it. */
  unclaim(key: string, node: string): void {
    if (this.#claims.get(key)?.holder.node === node) this.#claims.delete(key);
  }

  /** Forgets every claim of `node`, a member dead or gone; returns the live ones. */
  dropHolder(node: string): DroppedClaim[] {
    const now = this.#timers.now();
    const dropped: DroppedClaim[] = [];
    for (const [key, held] of this.#claims) {
      if (held.holder.node !== node) continue;
      this.#claims.delete(key);
      if (held.until > now) dropped.push({ key, until: held.until });
    }
    return dropped;
  }

  #sweep(now: number): void {
    for (const [key, held] of this.#claims) if (held.until <= now) this.#claims.delete(key);
  }
}

/** Whether a grant at `since` to `node` comes before `held`'s: earlier, then the lower node id. */
function before(since: number, node: string, held: Held): boolean {
  return since < held.since || (since === held.since && node < held.holder.node);
}
