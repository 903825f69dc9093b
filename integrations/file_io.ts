/**
 * Moving whole files in and out of objects, for `putFile`/`getFile` and the
 * command line alike: a reader of known size into a new object, and a file
 * that appears whole or not at all.
 *
 * @module
 */
import type { Client, PutOptions } from "../client/client.ts";
import { writeThroughTemporary } from "../native/write_through_temporary.ts";

/** Something bytes can be read from, as a file: fills some of `bytes`, null at the end. */
export interface Reader {
  read(bytes: Uint8Array): Promise<number | null>;
}

/** How {@link putFromReader} reads, and what it says of a reader whose size changed. */
export interface SizedPutHooks {
  /** The most bytes held in JS memory at once where the object has no buffer. */
  readonly piece: number;
  /** The most bytes one read puts into the object's buffer. Default: all that is left. */
  readonly step?: number;
  /** Called with the count of each read, such as for a progress bar. */
  readonly onRead?: (bytes: number) => void;
  /** The error for a reader that ended before `size` bytes, or had more. */
  readonly changed: (how: "shrank" | "grew") => Error;
}

/**
 * Stores `size` bytes of a reader as a new sealed object: read by the
 * kernel straight into the object's memory where the peer maps it (in
 * process, a daemon on a Unix socket), else in pieces written through the
 * lease, never held whole.
 *
 * @returns The object id.
 */
export async function putFromReader(
  client: Client,
  reader: Reader,
  size: number,
  options: PutOptions,
  hooks: SizedPutHooks,
): Promise<string> {
  await using writer = await client.create(size, options);
  const buffer = writer.buffer;
  const step = buffer === undefined ? hooks.piece : hooks.step ?? size;
  const scratch = buffer === undefined ? new Uint8Array(Math.min(hooks.piece, size)) : undefined;
  let at = 0;
  while (at < size) {
    const room = Math.min(step, size - at);
    const target = buffer?.subarray(at, at + room) ?? scratch!.subarray(0, room);
    const read = await reader.read(target);
    if (read === null) throw hooks.changed("shrank");
    if (buffer === undefined) await writer.write(target.subarray(0, read), at);
    at += read;
    hooks.onRead?.(read);
  }
  if ((await reader.read(new Uint8Array(1))) !== null) throw hooks.changed("grew");
  await writer.seal();
  return writer.id;
}

/**
 * Writes a file that appears whole or not at all: `write` fills a new
 * temporary file beside `path`, which is renamed over `path` once `write`
 * has finished and removed if it fails. A device, a pipe or a socket at
 * `path` itself (`/dev/null`, a named pipe) is written into as it is, as `cp`
 * does: a rename would replace the node with a file.
 *
 * @param path The file, replaced if it exists.
 * @param write Fills the file; it is closed afterwards.
 * @param mode The new file's permissions. Default: 0o666 less the umask.
 * @throws {Deno.errors.AlreadyExists} When `path` is a link to a device or a
 *   pipe, which a rename would replace and which writing through may harm (a
 *   link left in /tmp to a disk).
 */
export async function writeWhole(
  path: string,
  write: (file: Deno.FsFile) => Promise<void>,
  mode?: number,
): Promise<void> {
  if (await isNode(path)) {
    using file = await Deno.open(path, { write: true });
    await write(file);
    return;
  }
  await writeThroughTemporary(path, async (temporary) => {
    using file = await Deno.open(temporary, {
      write: true,
      createNew: true,
      ...(mode === undefined ? {} : { mode }),
    });
    await write(file);
  });
}

/** Whether `path` itself is a device, a pipe or a socket, which only its creator put there. */
async function isNode(path: string): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  if (info.isFile || info.isDirectory) return false;
  if (!info.isSymlink) return true;
  const target = await Deno.stat(path).catch(() => undefined);
  if (target !== undefined && !target.isFile && !target.isDirectory) {
    throw new Deno.errors.AlreadyExists(
      `Cannot write ${path}: it is a link to a device or a pipe; name that itself`,
    );
  }
  return false;
}
