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

/** The claim of one download: its object, this daemon, the lease, and where to log. */
export interface ClaimOptions {
  readonly id: string;
  readonly self: Holder;
  /** How long the claim lasts without renewal, in ms. */
  readonly ttl: number;
  readonly log: (message: string) => void;
}

/**
 * Claims the download of `id` for `self` for `ttl` ms, or renews its claim.
 *
 * @returns The holder of the claim now (`self` when granted), or undefined
 *   when the directory did not answer: try again shortly.
 */
export async function tryClaim(
  directory: Directory,
  { id, self, ttl, log }: ClaimOptions,
): Promise<Holder | undefined> {
  try {
    return await directory.claim!(id, self, ttl);
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
    log(`Cannot claim the download of ${id} yet: ${error.message}`);
    return undefined;
  }
}

/** A claim this daemon holds: renewed until disposed, then let go. */
export interface HeldClaim extends AsyncDisposable {
  /**
   * Aborted once another daemon holds the claim, or held it while this one
   * stalled past its lease and holds the object now: the download here must
   * stop, so that two never run at once.
   */
  readonly lost: AbortSignal;
  /** The daemon that holds the claim or the object now, once it is lost. */
  readonly holder: Holder | undefined;
}

/**
 * Holds the claim of `id`, granted to `self`: renews it every third of
 * `ttl`, and at once whenever the directory says it should be checked (the
 * membership changed, or an owner granted it over this daemon: see
 * {@link Directory.onClaimCheck}), one renewal at a time, until disposed,
 * which lets it go. A renewal sent more than `ttl` after the last one that
 * succeeded may have found the claim free and taken it anew, after another
 * daemon claimed it and finished meanwhile: the claim then counts as lost
 * when the directory lists another holder of the object.
 */
export function holdClaim(
  directory: Directory,
  { id, self, ttl, log }: ClaimOptions,
): HeldClaim {
  const lost = new AbortController();
  let holder: Holder | undefined;
  let released = false;
  /** When the last renewal that succeeded was sent (the grant first): the lease lasts `ttl` from there. */
  let renewed = performance.now();
  const stop = () => {
    clearInterval(timer);
    unsubscribe();
  };
  const lose = (to: Holder, why: string) => {
    if (lost.signal.aborted || released) return;
    stop();
    holder = to;
    log(`Lost the claim of ${id} to ${to.node} (${why}): its download stops here`);
    lost.abort(new StoreUnavailableError(`Lost the claim of ${id} to ${to.node}: ${why}`));
  };
  const renew = async () => {
    const sent = performance.now();
    const now = await directory.claim!(id, self, ttl);
    if (now.node !== self.node) return lose(now, "it holds the claim");
    const lapsed = sent - renewed > ttl;
    renewed = Math.max(renewed, sent);
    if (!lapsed) return;
    const other = (await directory.lookup(id))?.holders.find((h) => h.node !== self.node);
    if (other !== undefined) lose(other, "it holds the object, downloaded while this lease lapsed");
  };
  /** The renewal under way, and whether another was asked for meanwhile. */
  let renewing: Promise<void> | undefined;
  let again = false;
  const check = () => {
    if (renewing !== undefined) {
      again = true;
      return;
    }
    renewing = (async () => {
      do {
        again = false;
        await renew().catch(() => {});
      } while (again && !released && !lost.signal.aborted);
    })().finally(() => renewing = undefined);
  };
  const timer = setInterval(check, ttl / 3);
  const unsubscribe = directory.onClaimCheck?.(id, check) ?? (() => {});
  return {
    lost: lost.signal,
    get holder() {
      return holder;
    },
    [Symbol.asyncDispose]: async () => {
      released = true;
      stop();
      // A renewal under way would take the claim again after it is let go.
      await renewing;
      if (!lost.signal.aborted) await directory.unclaim?.(id, self.node).catch(() => {});
    },
  };
}
