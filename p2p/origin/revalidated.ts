/**
 * Origin objects as their last revalidation here left them: a 304 refreshes
 * the response headers stored with a body (its freshness, validators, any
 * header it sends), but a sealed object's metadata never changes, so this
 * daemon keeps the refreshed metadata beside it and answers with that while
 * it holds the same download. Another daemon holding a copy revalidates its
 * own when it finds it stale; a restart forgets, and the next revalidation
 * refreshes again.
 *
 * @module
 */
import type { Meta } from "../../core/validate.ts";

/** Refreshed metadata kept at most, the least recently refreshed going first. */
const MAX_ENTRIES = 10_000;

/** Refreshed metadata of origin objects, by id. */
export class Revalidated {
  readonly #entries = new Map<string, Meta>();

  /** The metadata of `id` as its last revalidation left it, when `stored` is the same download. */
  current(id: string, stored: Meta): Meta {
    const refreshed = this.#entries.get(id);
    if (refreshed === undefined) return stored;
    if (downloadOf(refreshed) === downloadOf(stored)) return refreshed;
    // Downloaded again since: the new download's headers hold.
    this.#entries.delete(id);
    return stored;
  }

  /** Keeps `refreshed` as the metadata of `id`. */
  record(id: string, refreshed: Meta): void {
    this.#entries.delete(id);
    this.#entries.set(id, refreshed);
    if (this.#entries.size > MAX_ENTRIES) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }
}

/** Which download stored metadata belongs to: when it was fetched from the origin. */
function downloadOf(meta: Meta): unknown {
  return (meta.origin as { fetchedAt?: unknown } | undefined)?.fetchedAt;
}
