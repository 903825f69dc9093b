import type { Blob } from "../../core/blob.ts";
import type { Clock } from "../../core/clock.ts";
import { InvalidArgumentError, UnknownLeaseError } from "../../core/errors.ts";
import type { Lease } from "../../core/lease.ts";
import type { Acquired } from "../../core/peer.ts";

/**
 * The leases the HTTP server granted to its clients, with their blobs: a
 * client names a lease by id, and the blobs of an {@link Acquired} are only
 * reachable from it. Every such lease has a TTL; entries past their expiry
 * are pruned, since the peer has ended those leases by then.
 */
export class LeaseTable {
  readonly #entries = new Map<string, { acquired: Acquired; expiresAt: number }>();
  readonly #clock: Clock;

  /** @param clock The clock the peer judges expiry by. */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The leases held, for shutdown. */
  get ids(): string[] {
    return [...this.#entries.keys()];
  }

  /** Remembers a lease granted over HTTP; it must have a TTL. */
  add(acquired: Acquired): void {
    this.#entries.set(acquired.lease.id, { acquired, expiresAt: acquired.lease.expiresAt! });
  }

  /** Moves a lease's expiry after a renewal. */
  renewed(lease: Lease): void {
    const entry = this.#entries.get(lease.id);
    if (entry !== undefined && lease.expiresAt !== undefined) entry.expiresAt = lease.expiresAt;
  }

  /** Forgets a lease that ended. */
  delete(leaseId: string): void {
    this.#entries.delete(leaseId);
  }

  /**
   * A blob of a lease.
   *
   * @throws {UnknownLeaseError} When no lease of that id was granted over HTTP.
   * @throws {InvalidArgumentError} When the object has no blob of that index.
   */
  blob(leaseId: string, index: string): Blob {
    const entry = this.#entries.get(leaseId);
    if (entry === undefined) throw new UnknownLeaseError(`Unknown lease: ${leaseId}`);
    const blobs = entry.acquired.blobs;
    const blob = /^\d+$/.test(index) ? blobs[Number(index)] : undefined;
    if (blob === undefined) {
      throw new InvalidArgumentError(
        `Invalid blob index: ${index}: object ${entry.acquired.object.id} has ${blobs.length}`,
      );
    }
    return blob;
  }

  /** Forgets every lease whose expiry has passed. */
  prune(): void {
    const now = this.#clock.now();
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#entries.delete(id);
    }
  }
}
