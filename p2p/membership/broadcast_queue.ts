/**
 * The queue of membership changes waiting to be piggy-backed on probes and
 * gossip, as memberlist's `TransmitLimitedQueue`: the least sent first, each
 * sent at most `retransmitMult x ceil(log10(n + 1))` times, and a newer
 * change about a member replaces the older one.
 *
 * @module
 */
import { retransmitLimit } from "./config.ts";
import type { Update } from "./messages.ts";

interface Queued {
  readonly update: Update;
  readonly order: number;
  transmits: number;
}

/** Membership changes to disseminate, each a bounded number of times. */
export class BroadcastQueue {
  readonly #mult: number;
  readonly #members: () => number;
  readonly #byNode = new Map<string, Queued>();
  #order = 0;

  /**
   * @param retransmitMult The retransmit multiplier.
   * @param members How many members there are now (the limit grows with its log).
   */
  constructor(retransmitMult: number, members: () => number) {
    this.#mult = retransmitMult;
    this.#members = members;
  }

  /** Changes waiting. */
  get size(): number {
    return this.#byNode.size;
  }

  /** Queues `update`, replacing any change queued about the same member. */
  push(update: Update): void {
    this.#byNode.set(update.node, { update, order: this.#order++, transmits: 0 });
  }

  /**
   * Up to `max` changes to send now, the least sent (then the newest) first;
   * each counts as one transmit, and leaves once it reached the limit.
   */
  take(max: number): Update[] {
    if (this.#byNode.size === 0 || max <= 0) return [];
    const limit = retransmitLimit(this.#mult, this.#members());
    const queued = [...this.#byNode.values()].sort((a, b) =>
      a.transmits - b.transmits || b.order - a.order
    );
    const taken: Update[] = [];
    for (const item of queued.slice(0, max)) {
      taken.push(item.update);
      if (++item.transmits >= limit) this.#byNode.delete(item.update.node);
    }
    return taken;
  }

  /** Drops every queued change. */
  clear(): void {
    this.#byNode.clear();
  }
}
