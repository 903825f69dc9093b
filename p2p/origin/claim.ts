/**
 * A read-through's claim of an origin download in the directory. The
 * directory may not answer for a while (the owners of the claim dead but
 * not yet known so, or stalled; Redis away): a claim that could not be
 * made is tried again, never the end of a fetch.
 *
 * @module
 */
import { StoreUnavailableError } from "../../core/errors.ts";
import type { Directory, Holder } from "../directory.ts";

/**
 * Claims the download of `id` for `self` for `ttl` ms, or renews its claim.
 *
 * @returns The holder of the claim now (`self` when granted), or undefined
 *   when the directory did not answer: try again shortly.
 */
export async function tryClaim(
  directory: Directory,
  { id, self, ttl, log }: {
    id: string;
    self: Holder;
    ttl: number;
    log: (message: string) => void;
  },
): Promise<Holder | undefined> {
  try {
    return await directory.claim!(id, self, ttl);
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
    log(`Cannot claim the download of ${id} yet: ${error.message}`);
    return undefined;
  }
}
