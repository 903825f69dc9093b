/** What a lease allows on its object. */
export const Access = {
  /** Read the bytes of a sealed object. */
  READ: "READ",
  /** Create a new object, write its bytes and seal it. */
  CREATE: "CREATE",
  /** Write into an unsealed object created by another lease, or delete an object. */
  WRITE: "WRITE",
} as const;

/** One of {@link Access}. */
export type Access = typeof Access[keyof typeof Access];

/** The right to READ, CREATE or WRITE one object, until released or expired. */
export interface Lease {
  /** Unique id of the lease. */
  readonly id: string;
  /** The object the lease is on. */
  readonly objectId: string;
  /** What the lease allows. */
  readonly access: Access;
  /** Time to live in milliseconds; absent for a lease that lasts until released. */
  readonly ttl?: number;
  /** When the lease expires, in epoch milliseconds; absent without a TTL. */
  readonly expiresAt?: number;
}

/** Checks that a value is one of {@link Access}. */
export function isAccess(value: unknown): value is Access {
  return value === "READ" || value === "CREATE" || value === "WRITE";
}
