/**
 * The bytes of an open handle for a reader that reads them over several
 * turns, such as a stream: a view detached under it means its lease ended
 * before the handle closed, which must fail the read, never end it short.
 *
 * @module
 */
import { ClosedError, LeaseExpiredError } from "../core/errors.ts";
import type { ObjectHandle } from "./object_handle.ts";

/**
 * The bytes of blob `index` of `handle`, whole; undefined past the last blob.
 *
 * @throws {ClosedError} When the handle has been closed.
 * @throws {LeaseExpiredError} When its lease ended under it (a lease TTL ran
 *   out, or the connection to the daemon was lost) and its views were detached.
 */
export function readableBlob(handle: ObjectHandle, index: number): Uint8Array | undefined {
  if (handle.closed) {
    throw new ClosedError(`Cannot read object ${handle.id}: the handle was closed`);
  }
  const bytes = handle.blobs[index];
  if (bytes !== undefined && bytes.length !== handle.info.blobSizes[index]) {
    throw new LeaseExpiredError(
      `Cannot read object ${handle.id}: its lease ended before the handle was closed ` +
        `(a lease TTL ran out, or the connection to the daemon was lost); get it again`,
    );
  }
  return bytes;
}
