import { InvalidArgumentError } from "./errors.ts";

/**
 * What a peer does when a new object does not fit: `"cache"` drops the least
 * recently used objects that no lease holds to make room; `"store"` keeps
 * everything and refuses the new object with a `CapacityExceededError`.
 */
export type PeerMode = "cache" | "store";

/**
 * Checks a {@link PeerMode}.
 *
 * @param mode The value to check; undefined gives `fallback`.
 * @param fallback The mode when none is given.
 * @returns The mode.
 * @throws {InvalidArgumentError} When it is neither `"cache"` nor `"store"`.
 *
 * @example
 * ```ts
 * import { validateMode } from "@packice/packice";
 * console.log(validateMode(undefined, "store")); // "store"
 * ```
 */
export function validateMode(mode: unknown, fallback: PeerMode): PeerMode {
  if (mode === undefined) return fallback;
  if (mode !== "cache" && mode !== "store") {
    throw new InvalidArgumentError(`Invalid mode: ${mode} (one of cache, store)`);
  }
  return mode;
}
