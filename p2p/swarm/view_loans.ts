/**
 * Views of an object's memory lent to the responses that relay its pieces,
 * instead of copies: a 4 MiB copy per relayed piece cost more CPU than
 * sending it (fresh pages to fault in and zero, then to give back), and a
 * broadcast on few cores is bound by CPU. The memory must then stay until
 * every loan is back: the owner ends lending ({@link ViewLoans.end}) before
 * its view closes, and waits. A loan not back within the grace is revoked:
 * its response stops at its next chunk, so an asker that stalls cannot hold
 * the object's seal up for longer than that.
 *
 * @module
 */
import type { LentRange } from "../../transport/http/upload_gate.ts";
import { sleep } from "../../transport/rate_limit.ts";

/** How long {@link ViewLoans.end} waits for loans by default before revoking them. */
const GRACE_MS = 2000;

/** The loans of one view. */
export class ViewLoans {
  /** Loans out, each with what revokes it. */
  readonly #out = new Set<AbortController>();
  #open = true;
  #back: PromiseWithResolvers<void> | undefined;

  /** Loans out now. */
  get out(): number {
    return this.#out.size;
  }

  /**
   * Lends `bytes` (a view of the owner's memory) until the loan's `done`;
   * undefined once lending has ended.
   */
  lend(bytes: Uint8Array): LentRange | undefined {
    if (!this.#open) return undefined;
    const revoke = new AbortController();
    this.#out.add(revoke);
    return {
      bytes,
      signal: revoke.signal,
      done: () => {
        if (!this.#out.delete(revoke)) return;
        if (this.#out.size === 0) this.#back?.resolve();
      },
    };
  }

  /**
   * Lends no more, and settles once every loan is back, or once `graceMs`
   * has passed: the loans still out are then revoked. Idempotent.
   */
  async end(graceMs = GRACE_MS): Promise<void> {
    this.#open = false;
    if (this.#out.size === 0) return;
    this.#back ??= Promise.withResolvers<void>();
    const late = new AbortController();
    await Promise.race([this.#back.promise, sleep(graceMs, late.signal)]);
    late.abort();
    for (const revoke of this.#out) revoke.abort();
    this.#out.clear();
  }
}
