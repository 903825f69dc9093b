/**
 * Where a `FileBlobStore` keeps its files under its data directory.
 *
 * ```text
 * <dir>/tmp/<random>/      an object being created: blob files 0, 1, …
 * <dir>/objects/<id>/      a sealed object: blob files 0, 1, … and meta.json
 * ```
 *
 * An object id is its directory's name as it is: a validated id has no path
 * separator, no control character, is not `.` or `..`, and is at most 250
 * UTF-8 bytes, below Linux's NAME_MAX of 255.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { InvalidArgumentError } from "../../core/errors.ts";

/** The name of the file that holds a sealed object's `ObjectInfo`. */
const META_FILE = "meta.json";

/** The paths of one data directory. */
export class Layout {
  /** The data directory, absolute. */
  readonly root: string;
  /** The directory of objects being created. */
  readonly tmp: string;
  /** The directory of sealed objects. */
  readonly objects: string;

  /** @param dir The data directory, absolute or relative to the working directory. */
  constructor(dir: string) {
    this.root = resolve(dir);
    this.tmp = join(this.root, "tmp");
    this.objects = join(this.root, "objects");
  }

  /**
   * The directory of the sealed object `id`.
   *
   * @throws {InvalidArgumentError} When the path would not be a direct child of `objects/`.
   */
  objectDir(id: string): string {
    const path = resolve(this.objects, id);
    if (id.includes("\0") || dirname(path) !== this.objects || basename(path) !== id) {
      throw new InvalidArgumentError(
        `Invalid object id: not usable as a file name: ${JSON.stringify(id)}`,
      );
    }
    return path;
  }

  /** A new, unused directory for an object being created. */
  newTmpDir(): string {
    return join(this.tmp, crypto.randomUUID());
  }
}

/** The file of blob `index` in the object directory `dir`. */
export function blobFile(dir: string, index: number): string {
  return join(dir, String(index));
}

/** The meta file in the object directory `dir`. */
export function metaFile(dir: string): string {
  return join(dir, META_FILE);
}
