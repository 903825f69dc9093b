/**
 * The object id of an origin URL: one object per URL in the cluster, its
 * version the origin's validator (`ETag`, else `Last-Modified`), kept in
 * the object's metadata and checked on revalidation.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { originUrl } from "../../transport/origin_fetch.ts";

/** The prefix of origin objects' ids. */
export const ORIGIN_ID_PREFIX = "origin-";

/**
 * The id of the object that caches `url` (fragment ignored): `origin-` and
 * the SHA-256 of the URL in hex, so any daemon computes the same one.
 *
 * @example
 * ```ts
 * import { originId } from "@packice/packice";
 * console.log(originId("https://example.com/a.bin#x") === originId("https://example.com/a.bin"));
 * // true
 * ```
 */
export function originId(url: string): string {
  return ORIGIN_ID_PREFIX + createHash("sha256").update(originUrl(url)).digest("hex");
}
