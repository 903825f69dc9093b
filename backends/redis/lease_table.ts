/** The leases this node granted, and the ids of those that ended by expiry. */
import { LeaseExpiredError, UnknownLeaseError } from "../../core/errors.ts";
import type { LeaseRecord } from "../../core/lease_store.ts";
import { checkLive } from "../../core/lifecycle.ts";
import type { ObjectInfo } from "../../core/object.ts";

/** How many ended lease ids are remembered, to tell "expired" from "unknown". */
const EXPIRED_MEMORY = 4096;

/** A lease this node granted. */
export interface OwnLease {
  record: LeaseRecord;
  /** For a CREATE lease until seal: the object being created, which goes when the lease ends. */
  creating: ObjectInfo | undefined;
  /** Whether Redis has the lease, as far as this node knows. */
  stored: boolean;
}

/** The leases this node granted, by id; the last ids that expired are remembered apart. */
export class LeaseTable extends Map<string, OwnLease> {
  readonly #expired = new Set<string>();

  /** The lease `leaseId`, live at `now`; an error saying why when it is not. */
  owned(leaseId: string, now: number): OwnLease {
    const own = this.get(leaseId);
    if (own === undefined) {
      if (this.#expired.has(leaseId)) throw new LeaseExpiredError(`Lease ${leaseId} has expired`);
      throw new UnknownLeaseError(`Unknown lease: ${leaseId}`);
    }
    checkLive(own.record, now);
    return own;
  }

  /** Removes a lease that ended; `expired`: it ended by expiry, which later calls are told. */
  forget(leaseId: string, expired: boolean): void {
    this.delete(leaseId);
    if (!expired) return;
    this.#expired.add(leaseId);
    if (this.#expired.size > EXPIRED_MEMORY) {
      this.#expired.delete(this.#expired.values().next().value!);
    }
  }
}
