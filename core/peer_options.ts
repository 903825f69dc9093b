/** The options a peer takes: the stores, the clock, and what every peer shares. */
import type { Blob } from "./blob.ts";
import type { BlobStore } from "./blob_store.ts";
import type { Clock } from "./clock.ts";
import type { LeaseStore } from "./lease_store.ts";
import type { PeerMode } from "./mode.ts";

/** What every peer takes besides where its bytes live. */
export interface PeerOptions {
  /** Where leases and the object directory live. Default: in this process's memory. */
  readonly leases?: LeaseStore;
  /** The clock that decides expiry. Default: the system clock. */
  readonly clock?: Clock;
  /** How often expired leases are swept, in milliseconds; 0 sweeps only when asked. Default 1000. */
  readonly sweepInterval?: number;
  /** This node's id in a shared lease store. */
  readonly node?: string;
  /**
   * Computes a content digest of each object after seal, in the background,
   * and records it in the lease store: a shared directory then knows every
   * sealed object's digest. Without it, digests are computed only on demand.
   */
  readonly digest?: (blobs: readonly Blob[]) => Promise<string>;
  /**
   * When a new object does not fit: `"cache"` drops the least recently used
   * sealed objects that no lease holds until it does, `"store"` refuses it
   * with a `CapacityExceededError`. Default `"store"`.
   */
  readonly mode?: PeerMode;
}

/** What {@link BasePeer} takes: the stores, and the options every peer shares. */
export interface BasePeerOptions extends PeerOptions {
  /** Where the bytes live. */
  readonly blobs: BlobStore;
  /** Where leases and the object directory live. */
  readonly leases: LeaseStore;
}
