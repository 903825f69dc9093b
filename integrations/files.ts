import type { Client, PutOptions } from "../client/client.ts";
import { putFromReader, writeWhole } from "./file_io.ts";

/** Reads and writes for peers without memory of their own go in pieces of this size. */
const PIECE = 4 << 20;

/**
 * Stores a file as a new sealed object and returns its id. Where the peer
 * holds memory (in process, a daemon on a Unix socket) the file is read by
 * the kernel straight into the new object's shared memory, with no copy in
 * JavaScript; elsewhere it is sent in pieces, never held whole.
 *
 * @param client The client to store through.
 * @param path The file.
 * @param options Id, metadata and TTL of the object.
 * @returns The object id.
 * @throws {TypeError} When the file changes size while it is read.
 *
 * @example Share a file
 * ```ts ignore
 * import { connect } from "@packice/packice";
 * import { getFile, putFile } from "@packice/packice/integrations";
 * await using client = await connect("/tmp/packice.sock");
 * const id = await putFile(client, "model.bin", { id: "model.bin" });
 * await getFile(client, id, "/tmp/copy-of-model.bin");
 * ```
 */
export async function putFile(
  client: Client,
  path: string | URL,
  options: PutOptions = {},
): Promise<string> {
  using file = await Deno.open(path, { read: true });
  const { size } = await file.stat();
  return await putFromReader(client, file, size, options, {
    piece: PIECE,
    changed: () =>
      new TypeError(`Cannot store ${path}: its size changed from ${size} bytes while it was read`),
  });
}

/**
 * Writes an object's bytes to a file and returns their count. Where the peer
 * maps the object, the bytes go from shared memory to the kernel with no copy
 * in JavaScript. The file appears whole or not at all: the bytes go to a
 * temporary file beside it, renamed over `path` at the end.
 *
 * @param client The client to read through.
 * @param id The object.
 * @param path The file to write, replaced if it exists.
 * @returns The number of bytes written.
 * @throws {NotFoundError} When there is no such object.
 */
export async function getFile(client: Client, id: string, path: string | URL): Promise<number> {
  await using handle = await client.get(id);
  await writeWhole(path instanceof URL ? path.pathname : path, async (file) => {
    for (const blob of handle.blobs) {
      let offset = 0;
      // Each write ends before the next starts and before the handle closes, so no write
      // is in flight when the mapping goes away.
      while (offset < blob.length) offset += await file.write(blob.subarray(offset));
    }
  });
  return handle.size;
}
