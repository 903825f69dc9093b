/**
 * What bounds all of a daemon's incoming transfers together: fetches from
 * other daemons and origin read-throughs alike reserve their object's size
 * in one transfer budget before its blob exists, and take their bytes from
 * one download token bucket as they arrive.
 *
 * @module
 */
import { TokenBucket } from "../transport/rate_limit.ts";
import { TransferBudget } from "./swarm/transfer_budget.ts";

/** A daemon's transfer budget and download rate; absent ones do not bound. */
export interface TransferLimits {
  /** Bytes of objects on their way here at once (`--transfer-budget`). */
  readonly budget?: TransferBudget | undefined;
  /** Bytes a second received by all transfers together (`--max-download-rate`). */
  readonly rate?: TokenBucket | undefined;
}

/**
 * The limits of `--transfer-budget` and `--max-download-rate`.
 *
 * @example
 * ```ts
 * import { transferLimits } from "@packice/packice";
 * const limits = transferLimits({ transferBudget: 256 << 20, maxDownloadRate: 200e6 });
 * const held = await limits.budget!.reserve(4 << 20, "object x");
 * await limits.rate!.take(4 << 20);
 * held.release();
 * ```
 */
export function transferLimits(
  { transferBudget, maxDownloadRate }: {
    readonly transferBudget?: number | undefined;
    readonly maxDownloadRate?: number | undefined;
  },
): TransferLimits {
  return {
    budget: transferBudget === undefined ? undefined : new TransferBudget(transferBudget),
    rate: maxDownloadRate === undefined ? undefined : new TokenBucket(maxDownloadRate),
  };
}
