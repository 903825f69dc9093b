/**
 * A download of a body of no stated length taken over by a daemon that
 * pulled the start of it into its spool: it asks the origin for the rest
 * only, `Range` from the end of the spool pieces it holds in a row, guarded
 * by `If-Range` on the version's validator, so that a body that changed
 * meanwhile comes whole (a 200) and is spooled from its start instead.
 *
 * @module
 */
import { StoreUnavailableError } from "../../core/errors.ts";
import type { Meta } from "../../core/validate.ts";
import { type OriginTrip, shown } from "./origin_download.ts";
import { validatorOf } from "./origin_meta.ts";
import type { Spool } from "./spool.ts";

/** Where a resume of a spooled body begins, and what it asks. */
export interface SpoolResume {
  /** The byte the range starts at: the end of the spool pieces held in a row. */
  readonly at: number;
  /** The response the pieces held are the body of. */
  readonly meta: Meta;
  /** `Range` and `If-Range`. */
  readonly headers: Record<string, string>;
}

/**
 * The resume of the body `spool` holds the start of; undefined when it
 * holds none, or its version has no validator (a range could then splice
 * two versions: the whole body is asked, and the pieces held compared).
 */
export function resumeOf(spool: Spool | undefined): SpoolResume | undefined {
  const meta = spool?.meta;
  const at = spool?.contiguous ?? 0;
  const validator = meta === undefined ? undefined : validatorOf(meta);
  if (meta === undefined || validator === undefined || at === 0) return undefined;
  return { at, meta, headers: { range: `bytes=${at}-`, "if-range": validator } };
}

/**
 * Where the body of a 206 answer to a resume from byte `at` starts: `at`.
 *
 * @throws {StoreUnavailableError} When its `Content-Range` starts elsewhere.
 */
export function spooledFrom(response: Response, at: number, trip: OriginTrip): number {
  const range = response.headers.get("content-range") ?? "";
  const start = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(range)?.[1];
  if (start === undefined || Number(start) !== at) {
    trip.counts.origin_failures_total++;
    throw new StoreUnavailableError(
      `Cannot fetch ${shown(trip.url)}: the origin answered a range from byte ${at} with ${range}`,
    );
  }
  return at;
}
