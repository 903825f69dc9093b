import type { Blob } from "../../core/blob.ts";
import type { StoredObject } from "../../core/blob_store.ts";
import { InternalError } from "../../core/errors.ts";

/**
 * Copies the bytes of one copy of an object into another, blob by blob,
 * without staging them in a JS buffer: each blob goes in one transfer, from a
 * view of the source's memory straight into the target (a file write from
 * mapped memory), or from the source's file straight into a writable view of
 * the target's memory. The transfers run off the JS thread: on the disk
 * tier's I/O threads, or Deno's blocking thread pool without the native library.
 *
 * @param source The copy to read, sealed.
 * @param target The copy to write, being created, with the same blob sizes.
 * @throws {InternalError} When neither side of a blob has its bytes in memory.
 */
export async function copyObject(source: StoredObject, target: StoredObject): Promise<void> {
  for (const [index, from] of source.blobs.entries()) await copyBlob(from, target.blobs[index]!);
}

async function copyBlob(source: Blob, target: Blob): Promise<void> {
  if (source.size === 0) return;
  const view = source.openView();
  if (view !== undefined) {
    try {
      await target.write(0, view);
    } finally {
      source.closeView(view);
    }
    return;
  }
  const into = source.readInto === undefined ? undefined : target.openView();
  if (into === undefined) {
    throw new InternalError(
      `Cannot copy a blob of ${source.size} bytes between tiers: neither side is in memory`,
    );
  }
  try {
    await source.readInto!(0, into);
  } finally {
    target.closeView(into);
  }
}
