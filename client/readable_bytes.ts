/**
 * The bytes of an open handle for a reader that reads them over several
 * turns, such as a stream: a lease that ends before the handle closes (a
 * view detached under it, a peer that no longer knows it) must fail the
 * read, never end it short.
 *
 * @module
 */
import type { Blob } from "../core/blob.ts";
import {
  ClosedError,
  LeaseExpiredError,
  type PackiceError,
  UnknownLeaseError,
} from "../core/errors.ts";
import type { ObjectHandle } from "./object_handle.ts";

/**
 * Copies bytes of `handle` from `offset` in the object into `target`: as
 * many as fit before the end of the blob that holds `offset`, out of its
 * view where `views` has one, else read from the blob (over HTTP, one
 * ranged GET). Gives how many; 0 at the end of the object.
 *
 * @param views The handle's zero-copy views or copies, or undefined when each read goes to the blob.
 * @throws {ClosedError} When the handle has been closed.
 * @throws {LeaseExpiredError} When its lease ended under it (a lease TTL ran
 *   out, or the connection to the daemon was lost).
 */
export async function copyOut(
  handle: ObjectHandle,
  blobs: readonly Blob[],
  views: readonly Uint8Array[] | undefined,
  offset: number,
  target: Uint8Array,
): Promise<number> {
  if (handle.closed) {
    throw new ClosedError(`Cannot read object ${handle.id}: the handle was closed`);
  }
  // The blob that holds `offset`, and where in it.
  const sizes = handle.info.blobSizes;
  let index = 0;
  let at = offset;
  while (index < sizes.length && at >= sizes[index]!) at -= sizes[index++]!;
  if (index === sizes.length) return 0;
  const length = Math.min(target.length, sizes[index]! - at);
  if (views !== undefined) {
    const view = views[index]!;
    if (view.length !== sizes[index]) throw leaseEnded(handle);
    target.set(view.subarray(at, at + length));
    return length;
  }
  const blob = blobs[index]!;
  const into = target.subarray(0, length);
  try {
    if (blob.readInto !== undefined) await blob.readInto(at, into);
    else into.set(await blob.read(at, length));
  } catch (error) {
    if (error instanceof LeaseExpiredError || error instanceof UnknownLeaseError) {
      throw leaseEnded(handle, error);
    }
    throw error;
  }
  return length;
}

function leaseEnded(handle: ObjectHandle, cause?: PackiceError): LeaseExpiredError {
  return new LeaseExpiredError(
    `Cannot read object ${handle.id}: its lease ended before the handle was closed ` +
      `(a lease TTL ran out, or the connection to the daemon was lost); get it again`,
    cause === undefined ? undefined : { cause },
  );
}
