import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import { AlreadyExistsError, LeaseExpiredError, UnknownLeaseError } from "../core/errors.ts";
import {
  checkDiscard,
  checkGrant,
  checkLive,
  checkSeal,
  endRemovesObject,
} from "../core/lifecycle.ts";
import type {
  AnnotatePatch,
  LeaseEnd,
  LeaseRecord,
  LeaseStore,
  SealPatch,
} from "../core/lease_store.ts";
import type { ObjectInfo } from "../core/object.ts";

interface Entry {
  info: ObjectInfo;
  /** The CREATE lease that made this incarnation of the id. */
  creator: string;
}

/** How many ended lease ids are remembered, to tell "expired" from "unknown". */
const EXPIRED_MEMORY = 4096;

/**
 * Leases and the object directory in this process's memory: the default
 * {@link LeaseStore} of a single peer.
 *
 * @example
 * ```ts
 * import { MemoryLeaseStore, MemoryPeer } from "@packice/packice";
 * await using peer = new MemoryPeer({ leases: new MemoryLeaseStore() });
 * ```
 */
export class MemoryLeaseStore implements LeaseStore {
  readonly #objects = new Map<string, Entry>();
  readonly #leases = new Map<string, LeaseRecord>();
  readonly #expired = new Set<string>();
  readonly #clock: Clock;

  /**
   * Creates the instance.
   *
   * @param clock The clock that decides expiry.
   */
  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  create(info: ObjectInfo, lease: LeaseRecord): Promise<void> {
    if (this.#objects.has(info.id)) {
      return Promise.reject(new AlreadyExistsError(`Object already exists: ${info.id}`));
    }
    this.#objects.set(info.id, { info, creator: lease.id });
    this.#leases.set(lease.id, lease);
    return Promise.resolve();
  }

  insertSealed(info: ObjectInfo): boolean {
    if (this.#objects.has(info.id)) return false;
    this.#objects.set(info.id, { info, creator: "" });
    return true;
  }

  removeSealed(objectId: string): boolean {
    if (this.#objects.get(objectId)?.info.state !== "SEALED") return false;
    this.#objects.delete(objectId);
    return true;
  }

  grant(objectId: string, lease: LeaseRecord): Promise<ObjectInfo> {
    try {
      const info = checkGrant(objectId, this.#objects.get(objectId)?.info, lease.access);
      this.#leases.set(lease.id, lease);
      return Promise.resolve(info);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  lease(leaseId: string): Promise<LeaseRecord> {
    try {
      return Promise.resolve(this.#live(leaseId));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  seal(leaseId: string, sealed: SealPatch): Promise<ObjectInfo> {
    try {
      const lease = this.#live(leaseId);
      const entry = this.#entryOf(lease);
      const info = checkSeal(lease, entry?.info);
      const next: ObjectInfo = { ...info, state: "SEALED", ...sealed };
      entry!.info = next;
      return Promise.resolve(next);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  discard(leaseId: string): Promise<LeaseEnd> {
    try {
      const lease = this.#live(leaseId);
      checkDiscard(lease);
      const entry = this.#objects.get(lease.objectId);
      this.#leases.delete(leaseId);
      if (entry === undefined) return Promise.resolve({ lease });
      this.#objects.delete(lease.objectId);
      return Promise.resolve({ lease, removed: entry.info });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  release(leaseId: string): Promise<LeaseEnd> {
    try {
      return Promise.resolve(this.#end(this.#live(leaseId)));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  renew(leaseId: string, ttl: number, now: number): Promise<LeaseRecord> {
    try {
      const lease = this.#live(leaseId);
      const next: LeaseRecord = { ...lease, ttl, expiresAt: now + ttl };
      this.#leases.set(leaseId, next);
      return Promise.resolve(next);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  expire(now: number): Promise<LeaseEnd[]> {
    const ended: LeaseEnd[] = [];
    for (const lease of this.#leases.values()) {
      if (lease.expiresAt !== undefined && lease.expiresAt <= now) {
        ended.push(this.#end(lease));
        this.#remember(lease.id);
      }
    }
    return Promise.resolve(ended);
  }

  annotate(objectId: string, patch: AnnotatePatch): Promise<void> {
    const entry = this.#objects.get(objectId);
    if (entry !== undefined) entry.info = { ...entry.info, ...patch };
    return Promise.resolve();
  }

  stat(objectId: string): Promise<ObjectInfo | undefined> {
    return Promise.resolve(this.#objects.get(objectId)?.info);
  }

  statHere(objectId: string): ObjectInfo | undefined {
    return this.#objects.get(objectId)?.info;
  }

  list(): Promise<ObjectInfo[]> {
    return Promise.resolve(Array.from(this.#objects.values(), (entry) => entry.info));
  }

  counts(): Promise<{ objects: number; leases: number }> {
    return Promise.resolve({ objects: this.#objects.size, leases: this.#leases.size });
  }

  close(): Promise<void> {
    this.#objects.clear();
    this.#leases.clear();
    return Promise.resolve();
  }

  #live(leaseId: string): LeaseRecord {
    const lease = this.#leases.get(leaseId);
    if (lease === undefined) {
      if (this.#expired.has(leaseId)) throw new LeaseExpiredError(`Lease ${leaseId} has expired`);
      throw new UnknownLeaseError(`Unknown lease: ${leaseId}`);
    }
    return checkLive(lease, this.#clock.now());
  }

  #entryOf(lease: LeaseRecord): Entry | undefined {
    const entry = this.#objects.get(lease.objectId);
    if (lease.access === "CREATE" && entry?.creator !== lease.id) return undefined;
    return entry;
  }

  #end(lease: LeaseRecord): LeaseEnd {
    this.#leases.delete(lease.id);
    const entry = this.#entryOf(lease);
    if (!endRemovesObject(lease, entry?.info)) return { lease };
    this.#objects.delete(lease.objectId);
    return { lease, removed: entry!.info };
  }

  #remember(leaseId: string): void {
    this.#expired.add(leaseId);
    if (this.#expired.size > EXPIRED_MEMORY) {
      this.#expired.delete(this.#expired.values().next().value!);
    }
  }
}
