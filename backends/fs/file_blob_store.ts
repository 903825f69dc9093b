/**
 * FileBlobStore: one idea, the disk tier's layout of objects as files (one
 * directory per object, blob files and a meta file, written under a
 * temporary name and renamed at seal) and its recovery after a restart. The
 * files themselves are `file_blob.ts`, their names `layout.ts`, the meta
 * file `meta_file.ts`.
 *
 * @module
 */
import { HandedOut } from "../../core/handed_out.ts";
import { join } from "node:path";
import type { BlobStore, RecoveredObject, StoredObject } from "../../core/blob_store.ts";
import {
  AlreadyExistsError,
  AlreadySealedError,
  CapacityExceededError,
  ClosedError,
  InvalidArgumentError,
  NotFoundError,
} from "../../core/errors.ts";
import { totalSize } from "../../core/object.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { validateObjectId, validateSize } from "../../core/validate.ts";
import type { BlobFileOpener } from "./blob_file.ts";
import { FileBlob } from "./file_blob.ts";
import { fromFsError, removeTree, syncDir } from "./io.ts";
import { blobFile, Layout } from "./layout.ts";
import { readSealedObject, writeMetaFile } from "./meta_file.ts";
import { DIR_MODE, privateDir } from "./modes.ts";

/** Options of {@link FileBlobStore}. */
export interface FileBlobStoreOptions {
  /**
   * The data directory; created when missing. It and the directories in it
   * are made (or, when looser, tightened to) mode 0700, and files in it are
   * created 0600: only the owner reads objects from disk.
   */
  readonly dir: string;
  /** The most bytes of blobs the store may hold. */
  readonly capacity: number;
  /**
   * What creates blob files and moves their bytes until they are sealed. By
   * default Deno's file system calls; the tiered peer passes the native
   * library's low-priority I/O threads.
   */
  readonly files?: BlobFileOpener;
  /**
   * Told of each object that {@link FileBlobStore.recover} removes because
   * its files are damaged or incomplete (its `meta.json` unreadable, a blob
   * missing or of another size): a sealed object lost on disk.
   */
  readonly warn?: (message: string) => void;
}

type FileObjectState = "CREATING" | "SEALED" | "FREED";

/** The blobs of one object and the directory that holds them. */
class FileObject implements StoredObject {
  readonly id: string;
  readonly blobSizes: readonly number[];
  readonly size: number;
  readonly blobs: readonly FileBlob[];
  /** Under `tmp/` while creating, under `objects/` once sealed. */
  dir: string;
  state: FileObjectState;
  /** The seal under way, if any. */
  sealing: Promise<void> | undefined;

  constructor(
    id: string,
    blobSizes: readonly number[],
    blobs: readonly FileBlob[],
    dir: string,
    state: FileObjectState,
  ) {
    this.id = id;
    this.blobSizes = blobSizes;
    this.size = totalSize(blobSizes);
    this.blobs = blobs;
    this.dir = dir;
    this.state = state;
  }
}

/**
 * A {@link BlobStore} that keeps each object as a directory of files: one file
 * per blob, plus `meta.json` once sealed.
 *
 * An object is created under `<dir>/tmp/<random>/`. Sealing flushes its blob
 * files and `meta.json` to disk, renames the directory to
 * `<dir>/objects/<id>/` and flushes `objects/`, so after a crash an object is
 * either whole under `objects/` or gone; {@link FileBlobStore.recover} finds
 * the whole ones again on the next start.
 *
 * @example Keep an object across restarts
 * ```ts
 * import { FileBlobStore } from "@packice/packice";
 * const dir = await Deno.makeTempDir();
 * const info = {
 *   id: "greeting",
 *   state: "CREATING",
 *   size: 5,
 *   blobSizes: [5],
 *   meta: {},
 *   createdAt: Date.now(),
 * } as const;
 *
 * {
 *   await using store = new FileBlobStore({ dir, capacity: 1024 });
 *   const stored = await store.allocate(info);
 *   await stored.blobs[0]!.write(0, new TextEncoder().encode("hello"));
 *   await store.seal(stored, { ...info, state: "SEALED", sealedAt: Date.now() });
 * }
 *
 * await using store = new FileBlobStore({ dir, capacity: 1024 });
 * const [found] = await store.recover();
 * const bytes = await found!.stored.blobs[0]!.read(0, 5);
 * console.log(new TextDecoder().decode(bytes)); // "hello"
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class FileBlobStore implements BlobStore, AsyncDisposable {
  /** The most bytes of blobs this store may hold. */
  readonly capacity: number;
  readonly #layout: Layout;
  readonly #files: BlobFileOpener | undefined;
  readonly #warn: ((message: string) => void) | undefined;
  /** Every object allocated or recovered and not yet freed. */
  readonly #objects = new Set<FileObject>();
  /** The directories under `tmp/` of allocations under way. */
  readonly #allocating = new Set<string>();
  /** Every object this store ever handed out, freed or not. */
  readonly #handedOut = new HandedOut<FileObject>();
  #used = 0;
  #prepared = false;
  #closing: Promise<void> | undefined;

  /**
   * Opens no file yet: directories are created on first use.
   *
   * @param options The data directory and the capacity in bytes.
   * @throws {InvalidArgumentError} When `dir` is empty or `capacity` is not a non-negative integer.
   */
  constructor(options: FileBlobStoreOptions) {
    if (typeof options.dir !== "string" || options.dir === "") {
      throw new InvalidArgumentError("Invalid dir: expected a non-empty path");
    }
    this.capacity = validateSize(options.capacity, "capacity");
    this.#layout = new Layout(options.dir);
    this.#files = options.files;
    this.#warn = options.warn;
  }

  /** Bytes of the objects held, sealed or being created. */
  get used(): number {
    return this.#used;
  }

  /**
   * Creates the files of a new object under `tmp/`, each at its full size.
   *
   * @param info The new object; only `id` and `blobSizes` are used.
   * @returns The object's blobs, writable until sealed.
   * @throws {CapacityExceededError} When the bytes do not fit in the capacity or on the disk.
   * @throws {InvalidArgumentError} When the id is not usable as a file name or a size is invalid.
   * @throws {ClosedError} When the store is closed.
   */
  async allocate(info: ObjectInfo): Promise<StoredObject> {
    const id = info.id;
    this.#checkOpen(`allocate object ${id}`);
    // Refuses an id that would escape objects/ before anything is written.
    this.#layout.objectDir(id);
    const blobSizes = info.blobSizes.map((size, index) =>
      validateSize(size, `size of blob ${index} of ${id}`)
    );
    const size = totalSize(blobSizes);
    const free = this.capacity - this.#used;
    if (size > free) {
      throw new CapacityExceededError(
        `Cannot allocate ${size} bytes for ${id}: ${free} of ${this.capacity} bytes free`,
      );
    }
    this.#used += size;
    const dir = this.#layout.newTmpDir();
    const blobs: FileBlob[] = [];
    this.#allocating.add(dir);
    try {
      await this.#prepare();
      await Deno.mkdir(dir, { mode: DIR_MODE });
      for (const [index, blobSize] of blobSizes.entries()) {
        const label = `blob ${index} of ${id}`;
        blobs.push(await FileBlob.create(blobFile(dir, index), blobSize, label, this.#files));
      }
      this.#checkOpen(`allocate object ${id}`);
    } catch (error) {
      // close() has already set used to 0 when it ran meanwhile.
      if (this.#closing === undefined) this.#used -= size;
      await Promise.all(blobs.map((blob) => blob.release()));
      // Best effort: recover() removes whatever is left under tmp/ on the next start.
      await removeTree(dir).catch(() => undefined);
      throw fromFsError(error, `allocate ${size} bytes for ${id}`);
    } finally {
      this.#allocating.delete(dir);
    }
    return this.#track(new FileObject(id, blobSizes, blobs, dir, "CREATING"));
  }

  /**
   * Flushes the blob files and `meta.json` (holding `info` in state SEALED) to
   * disk, then moves the object's directory to `objects/<id>` in one rename.
   * Writes are refused from the moment this is called.
   *
   * @param stored What {@link FileBlobStore.allocate} returned.
   * @param info What is known of the object, written to `meta.json`.
   * @throws {AlreadySealedError} When the object is sealed or being sealed.
   * @throws {AlreadyExistsError} When a sealed object of that id that this store does not hold is
   * already on disk.
   * @throws {CapacityExceededError} When the disk is full.
   * @throws {InvalidArgumentError} When `stored` is not from this store or `info` is of another object.
   * @throws {NotFoundError} When the object has been freed.
   * @throws {ClosedError} When the store is closed.
   */
  async seal(stored: StoredObject, info: ObjectInfo): Promise<void> {
    const object = this.#own(stored, "seal");
    if (object.state === "FREED") throw new NotFoundError(`Cannot seal object ${object.id}: freed`);
    if (object.state === "SEALED" || object.sealing !== undefined) {
      throw new AlreadySealedError(`Cannot seal object ${object.id}: already sealed`);
    }
    if (info.id !== object.id || !sameSizes(info.blobSizes, object.blobSizes)) {
      throw new InvalidArgumentError(
        `Cannot seal object ${object.id}: info is of object ${info.id} with blob sizes [${info.blobSizes}], not [${object.blobSizes}]`,
      );
    }
    object.sealing = this.#seal(object, { ...info, state: "SEALED" });
    try {
      await object.sealing;
    } finally {
      object.sealing = undefined;
    }
  }

  /**
   * Closes the object's files and removes its directory, once a seal under
   * way has finished. Freeing an object twice does nothing.
   *
   * @param stored What {@link FileBlobStore.allocate} or {@link FileBlobStore.recover} returned.
   * @throws {InvalidArgumentError} When `stored` is not from this store.
   * @throws {ClosedError} When the store is closed.
   */
  async free(stored: StoredObject): Promise<void> {
    const object = this.#own(stored, "free");
    await object.sealing?.catch(() => undefined);
    if (object.state === "FREED") return;
    object.state = "FREED";
    // close() has already dropped the object and set used to 0 when it ran meanwhile.
    if (this.#objects.delete(object)) this.#used -= object.size;
    await Promise.all(object.blobs.map((blob) => blob.release()));
    await removeTree(object.dir);
  }

  /**
   * Finds the sealed objects of an earlier run. Removes every directory under
   * `tmp/` (unfinished objects) and every directory under `objects/` that is
   * not a whole sealed object: a missing or unreadable `meta.json`, or blob
   * files that do not match its `blobSizes`. Objects this store already holds
   * are left alone. Recovered bytes count in {@link FileBlobStore.used}, even
   * beyond the capacity.
   *
   * @returns The sealed objects found.
   * @throws {ClosedError} When the store is closed.
   */
  async recover(): Promise<RecoveredObject[]> {
    this.#checkOpen("recover");
    await this.#prepare();
    const held = new Set(this.#allocating);
    for (const object of this.#objects) {
      held.add(object.dir).add(this.#layout.objectDir(object.id));
    }
    for (const name of await listDir(this.#layout.tmp)) {
      const path = join(this.#layout.tmp, name);
      if (!held.has(path)) await removeTree(path);
    }
    const recovered: RecoveredObject[] = [];
    for (const id of await listDir(this.#layout.objects)) {
      const path = join(this.#layout.objects, id);
      if (held.has(path)) continue;
      const info = isObjectId(id) ? await readSealedObject(path, id) : undefined;
      if (info === undefined) {
        await removeTree(path);
        if (isObjectId(id)) {
          this.#warn?.(
            `Removed object ${id} from ${path}: its files were damaged or incomplete (meta.json unreadable, a blob missing or of another size); it is lost, put it again`,
          );
        }
        continue;
      }
      this.#checkOpen("recover");
      const blobs = info.blobSizes.map((size, index) =>
        FileBlob.sealed(blobFile(path, index), size, `blob ${index} of ${id}`)
      );
      const stored = this.#track(new FileObject(id, info.blobSizes, blobs, path, "SEALED"));
      this.#used += info.size;
      recovered.push({ info, stored });
    }
    return recovered;
  }

  /**
   * Closes every open file, once seals under way have finished. Sealed
   * objects stay on disk for {@link FileBlobStore.recover}; unfinished ones
   * stay under `tmp/` until then. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Same as {@link FileBlobStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    const objects = [...this.#objects];
    await Promise.all(objects.map((object) => object.sealing?.catch(() => undefined)));
    this.#objects.clear();
    this.#used = 0;
    await Promise.all(objects.flatMap((object) => object.blobs.map((blob) => blob.release())));
    await this.#files?.idle?.();
  }

  async #seal(object: FileObject, info: ObjectInfo): Promise<void> {
    const flushed = Promise.all(object.blobs.map((blob) => blob.beginSeal()));
    const target = this.#layout.objectDir(object.id);
    try {
      await flushed;
      await writeMetaFile(object.dir, info);
      await this.#renameInto(object.dir, target);
    } catch (error) {
      for (const blob of object.blobs) blob.abortSeal();
      if (isDirectoryTaken(error)) {
        throw new AlreadyExistsError(
          `Cannot seal object ${object.id}: a sealed object of that id is already on disk`,
          { cause: error },
        );
      }
      throw fromFsError(error, `seal object ${object.id}`);
    }
    object.dir = target;
    object.state = "SEALED";
    await Promise.all(object.blobs.map((blob, index) => blob.commitSeal(blobFile(target, index))));
    await syncDir(this.#layout.objects);
  }

  /**
   * Renames an object's directory to `target`. When an older incarnation of
   * the same id that this store still holds is there (deleted, but still
   * read), its directory first moves aside under `tmp/`, where its readers
   * keep their open files, `free()` removes it, and after a crash
   * {@link FileBlobStore.recover} does.
   */
  async #renameInto(dir: string, target: string): Promise<void> {
    try {
      await Deno.rename(dir, target);
      return;
    } catch (error) {
      const older = isDirectoryTaken(error) ? this.#sealedIn(target) : undefined;
      if (older === undefined) throw error;
      const aside = this.#layout.newTmpDir();
      await Promise.all(older.blobs.map((blob) => blob.hold()));
      await Deno.rename(target, aside);
      older.dir = aside;
      for (const [index, blob] of older.blobs.entries()) blob.moved(blobFile(aside, index));
    }
    await Deno.rename(dir, target);
  }

  /** The sealed object held in directory `dir`, if any. */
  #sealedIn(dir: string): FileObject | undefined {
    for (const object of this.#objects) {
      if (object.state === "SEALED" && object.dir === dir) return object;
    }
    return undefined;
  }

  async #prepare(): Promise<void> {
    if (this.#prepared) return;
    await privateDir(this.#layout.root);
    await privateDir(this.#layout.tmp);
    await privateDir(this.#layout.objects);
    this.#prepared = true;
  }

  #track(object: FileObject): FileObject {
    this.#objects.add(object);
    this.#handedOut.add(object);
    return object;
  }

  #own(stored: StoredObject, action: string): FileObject {
    this.#checkOpen(`${action} an object`);
    return this.#handedOut.own(stored, action);
  }

  #checkOpen(action: string): void {
    if (this.#closing !== undefined) throw new ClosedError(`Cannot ${action}: store is closed`);
  }
}

/** The names of the entries of a directory. */
async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names;
}

function isObjectId(name: string): boolean {
  try {
    validateObjectId(name);
    return true;
  } catch {
    return false;
  }
}

function sameSizes(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((size, index) => size === b[index]);
}

/** Whether a rename failed because its target is a directory that is not empty. */
function isDirectoryTaken(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return error instanceof Deno.errors.AlreadyExists || code === "ENOTEMPTY" || code === "EEXIST";
}
