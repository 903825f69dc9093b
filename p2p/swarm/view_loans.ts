/**
 * Views of an object's memory lent to the responses that relay its pieces,
 * instead of copies: a 4 MiB copy per relayed piece cost more CPU than
 * sending it (fresh pages to fault in and zero, then to give back), and a
 * broadcast on few cores is bound by CPU. A writable view closes when the
 * transfer ends (it must, before its object is sealed); the loans still
 * out then are switched to copies of their bytes ({@link ViewLoans.end}),
 * so that neither the seal waits for a slow asker nor a response is cut.
 * A slice already being written then still reads the view's memory, which
 * stays mapped as long as its blob lives, and a freed blob's mapping goes
 * back to the memfd pool, not to the kernel.
 *
 * @module
 */
import type { LentRange } from "../../transport/http/upload_gate.ts";

/** A loan: its bytes change from the view to a copy when lending ends. */
interface Loan extends LentRange {
  bytes: Uint8Array;
}

/** The loans of one view. */
export class ViewLoans {
  readonly #out = new Set<Loan>();
  #open = true;

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
    const loan: Loan = { bytes, done: () => void this.#out.delete(loan) };
    this.#out.add(loan);
    return loan;
  }

  /**
   * Lends no more, and gives every loan still out a copy of its bytes in
   * place of the view: the view may close as soon as this returns.
   * Idempotent.
   */
  end(): void {
    this.#open = false;
    for (const loan of this.#out) loan.bytes = loan.bytes.slice();
    this.#out.clear();
  }
}
