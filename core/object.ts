import type { Meta } from "./validate.ts";

/** The states of an object: created, written, then sealed and immutable. */
export type ObjectState = "CREATING" | "SEALED";

/** What a peer knows about an object: everything but its bytes. */
export interface ObjectInfo {
  /** The object id. */
  readonly id: string;
  /** `CREATING` until sealed, then `SEALED` for good. */
  readonly state: ObjectState;
  /** Total size in bytes of all blobs. */
  readonly size: number;
  /** The size of each blob, in order. */
  readonly blobSizes: readonly number[];
  /** The user's metadata. */
  readonly meta: Meta;
  /** When the object was created, in epoch milliseconds. */
  readonly createdAt: number;
  /** When the object was sealed, in epoch milliseconds. */
  readonly sealedAt?: number;
  /**
   * When the object leaves lookups, in epoch milliseconds: its create time
   * plus the TTL it was created with (see `objectDeadline`); absent for an
   * object that stays until deleted.
   */
  readonly expiresAt?: number;
  /** A digest of the content, where the peer has computed one. */
  readonly digest?: string;
  /** The tier that holds the bytes, for peers with tiers. */
  readonly tier?: string;
  /** The nodes that hold the sealed bytes and where they serve, from a shared directory. */
  readonly holders?: readonly { node: string; address?: string }[];
}

/** Sums blob sizes. */
export function totalSize(blobSizes: readonly number[]): number {
  let total = 0;
  for (const size of blobSizes) total += size;
  return total;
}
