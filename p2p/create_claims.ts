/**
 * The claims a cluster peer takes for creates under a given id, without a
 * shared lease store (see `PutClaims`): held by lease id from the CREATE
 * until its seal, discard or release.
 *
 * @module
 */
import { validateObjectId } from "../core/validate.ts";
import type { Directory, Holder } from "./directory.ts";
import { PutClaims } from "./put_claims.ts";

/** Claims of the creates under way, by lease id. */
export class CreateClaims {
  readonly #claims: PutClaims;
  readonly #held = new Map<string, () => Promise<void>>();

  /**
   * @param directory A directory with claims.
   * @param self This daemon as others reach it; no claims before it is known.
   */
  constructor(directory: Directory, self: () => Holder | undefined) {
    this.#claims = new PutClaims(directory, self);
  }

  /**
   * Claims `id`; the returned release lets go of it.
   *
   * @throws {AlreadyExistsError} When another daemon claims or holds `id`.
   */
  claim(id: string): Promise<() => Promise<void>> {
    return this.#claims.claim(validateObjectId(id));
  }

  /** Keeps the claim `release` lets go of until the lease `leaseId` ends. */
  hold(leaseId: string, release: () => Promise<void>): void {
    this.#held.set(leaseId, release);
  }

  /** Lets go of the claim of a create's lease, if it took one. */
  async unclaim(leaseId: string): Promise<void> {
    const release = this.#held.get(leaseId);
    if (release === undefined) return;
    this.#held.delete(leaseId);
    await release();
  }

  /** Whether any claim is held. */
  get size(): number {
    return this.#held.size;
  }

  /** Lets go of every claim. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#held.keys()].map((lease) => this.unclaim(lease)));
  }
}
