/**
 * A blob store over a data directory: each object is a directory of files,
 * created under `tmp/` and renamed into `objects/` when sealed, so sealed
 * objects survive a restart.
 *
 * @example
 * ```ts
 * import { FileBlobStore } from "@packice/packice";
 * const dir = await Deno.makeTempDir();
 * await using store = new FileBlobStore({ dir, capacity: 1 << 30 });
 * const sealed = await store.recover();
 * console.log(sealed.length); // 0
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export { FileBlobStore } from "./file_blob_store.ts";
export type { FileBlobStoreOptions } from "./file_blob_store.ts";
export type { BlobFile, BlobFileOpener } from "./blob_file.ts";
