/** The record of an object about to be created, built from the checked options of its CREATE. */
import { objectDeadline } from "./lifecycle.ts";
import type { ObjectInfo } from "./object.ts";
import { totalSize } from "./object.ts";
import type { AcquireOptions } from "./peer.ts";
import { validateBlobSizes, validateMeta, validateTtl } from "./validate.ts";

/**
 * The CREATING record of object `id` made at `now`: its blob sizes, metadata
 * and object TTL checked, its deadline (if any) set by `objectDeadline`.
 *
 * @throws {InvalidArgumentError} For a bad size, metadata or TTL.
 */
export function creatingInfo(id: string, options: AcquireOptions, now: number): ObjectInfo {
  const blobSizes = validateBlobSizes(options.size);
  const meta = validateMeta(options.meta);
  const expiresAt = objectDeadline(now, validateTtl(options.objectTtl));
  return {
    id,
    state: "CREATING",
    size: totalSize(blobSizes),
    blobSizes,
    meta,
    createdAt: now,
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}
