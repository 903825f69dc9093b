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
  /**
   * The size of each blob, in order. Empty, with `size` 0, for an object
   * still on its way to a cluster daemon whose size is not known yet (state
   * `CREATING`).
   */
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

/**
 * Whether two records of one id describe the same bytes, as far as they
 * tell: the same size and blob sizes, and the same digest where both have one
 * of the same algorithm (the part before `:`). Records that cannot be told
 * apart by these are the same content here; a shared directory asks for
 * digests before it counts a copy as one of its holders.
 *
 * @param a One record.
 * @param b The other.
 * @returns False when they certainly describe different bytes.
 */
export function sameContent(a: ObjectInfo, b: ObjectInfo): boolean {
  if (a.size !== b.size || a.blobSizes.length !== b.blobSizes.length) return false;
  for (let i = 0; i < a.blobSizes.length; i++) {
    if (a.blobSizes[i] !== b.blobSizes[i]) return false;
  }
  if (a.digest === undefined || b.digest === undefined) return true;
  return a.digest === b.digest || algorithm(a.digest) !== algorithm(b.digest);
}

function algorithm(digest: string): string {
  return digest.slice(0, digest.indexOf(":") + 1);
}
