import { CapacityExceededError } from "../../core/errors.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { validateSize } from "../../core/validate.ts";

/**
 * The blob sizes of an object, checked, and their total.
 *
 * @throws {InvalidArgumentError} When a size is not a non-negative safe integer.
 */
export function blobSizes(info: ObjectInfo): { sizes: number[]; total: number } {
  const sizes = info.blobSizes.map((size) => validateSize(size, `blob size of object ${info.id}`));
  const total = sizes.reduce((sum, size) => sum + size, 0);
  validateSize(total, `size of object ${info.id}`);
  return { sizes, total };
}

/**
 * Throws unless `total` more bytes fit.
 *
 * @throws {CapacityExceededError} Saying how much was asked and how much is free.
 */
export function checkRoom(info: ObjectInfo, total: number, used: number, capacity: number): void {
  if (used + total <= capacity) return;
  throw new CapacityExceededError(
    `Cannot allocate ${total} bytes for object ${info.id}: ${
      capacity - used
    } of ${capacity} bytes free`,
  );
}
