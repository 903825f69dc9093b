/**
 * The claims one member keeps as an owner of their keys: who holds each key
 * and until when. A claim is an exclusive CREATE with a lease: granted when
 * no live claim holds the key, renewed only by its holder, gone when it
 * expires, when its holder lets go, or when its holder is known dead.
 *
 * @module
 */
import type { Holder } from "../directory.ts";
import type { Timers } from "../membership/timers.ts";

interface Held {
  readonly holder: Holder;
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
   * Grants `key` to `claimant` for `ttl` ms when it is free or already the
   * claimant's, else leaves it: a compare-and-set.
   *
   * @returns The holder now.
   */
  claim(key: string, claimant: Holder, ttl: number): Holder {
    const now = this.#timers.now();
    const held = this.#claims.get(key);
    if (held !== undefined && held.until > now && held.holder.node !== claimant.node) {
      return held.holder;
    }
    this.#claims.set(key, { holder: claimant, until: now + ttl });
    if (this.#claims.size > 4096) this.#sweep(now);
    return claimant;
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

  /** Forgets every claim of `node`, a member dead or gone. */
  dropHolder(node: string): void {
    for (const [key, held] of this.#claims) {
      if (held.holder.node === node) this.#claims.delete(key);
    }
  }

  #sweep(now: number): void {
    for (const [key, held] of this.#claims) if (held.until <= now) this.#claims.delete(key);
  }
}
