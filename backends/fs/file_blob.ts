import type { Blob } from "../../core/blob.ts";
import {
  AlreadySealedError,
  ClosedError,
  InternalError,
  InvalidArgumentError,
} from "../../core/errors.ts";
import { checkRange } from "../../core/range.ts";
import { type BlobFile, type BlobFileOpener, DenoBlobFile, denoBlobFiles } from "./blob_file.ts";
import { fromFsError } from "./io.ts";

type State = "CREATING" | "SEALING" | "SEALED" | "RELEASED";

/**
 * One blob of a `FileBlobStore` object: a file of exactly `size` bytes.
 *
 * While the object is being created the file stays open for reading and
 * writing; once sealed it is opened read-only on the first read and closed
 * when the blob is released. Reads and writes of one blob run one after the
 * other, each a seek then a full transfer, so they never interleave.
 */
export class FileBlob implements Blob {
  /** Size in bytes. */
  readonly size: number;
  readonly #label: string;
  #path: string;
  #file: BlobFile | undefined;
  #state: State;
  #queue: Promise<unknown> = Promise.resolve();

  /**
   * Creates the file of a new blob at its full size, open for writing.
   *
   * @param path Where the file goes; it must not exist yet.
   * @param size The blob's size in bytes.
   * @param label The blob in messages, such as "blob 0 of abc".
   * @param files What creates the file and then moves its bytes; by default Deno's file system calls.
   * @returns The blob, in state CREATING.
   */
  static async create(
    path: string,
    size: number,
    label: string,
    files: BlobFileOpener = denoBlobFiles,
  ): Promise<FileBlob> {
    return new FileBlob(path, size, label, await files.create(path, size));
  }

  /**
   * A blob of a sealed object already on disk; the file is opened on first read.
   *
   * @param path The blob's file.
   * @param size The blob's size in bytes.
   * @param label The blob in messages, such as "blob 0 of abc".
   * @returns The blob, in state SEALED.
   */
  static sealed(path: string, size: number, label: string): FileBlob {
    return new FileBlob(path, size, label, undefined);
  }

  /**
   * Use {@link FileBlob.create} or {@link FileBlob.sealed}.
   *
   * @param path The blob's file.
   * @param size The blob's size in bytes.
   * @param label The blob in messages.
   * @param file The open file of a blob being created, or undefined for a sealed blob.
   */
  constructor(
    path: string,
    size: number,
    label: string,
    file: BlobFile | Deno.FsFile | undefined,
  ) {
    this.size = size;
    this.#label = label;
    this.#path = path;
    this.#file = file instanceof Deno.FsFile ? new DenoBlobFile(file) : file;
    this.#state = file === undefined ? "SEALED" : "CREATING";
  }

  /**
   * Returns undefined: this backend copies bytes in and out of files. Mapping
   * sealed files read-only through the native library would go here.
   */
  openView(): Uint8Array | undefined {
    return undefined;
  }

  /** Does nothing, as {@link FileBlob.openView} opens no view. */
  closeView(_view: Uint8Array): void {}

  /**
   * Copies `length` bytes from `offset` into a new array.
   *
   * @throws {InvalidArgumentError} When the range is not inside the blob.
   * @throws {ClosedError} When the blob has been freed.
   */
  async read(offset: number, length: number): Promise<Uint8Array> {
    this.#checkRange("read", offset, length);
    const bytes = new Uint8Array(length);
    await this.readInto(offset, bytes);
    return bytes;
  }

  /**
   * Fills `target` with the bytes from `offset`, read from the file straight
   * into it: no buffer in between, so `target` may be a view of mapped memory.
   *
   * @throws {InvalidArgumentError} When the range is not inside the blob.
   * @throws {ClosedError} When the blob has been freed.
   */
  async readInto(offset: number, target: Uint8Array): Promise<void> {
    if (!(target instanceof Uint8Array)) {
      throw new InvalidArgumentError(`Cannot read ${this.#label}: target must be a Uint8Array`);
    }
    this.#checkRange("read", offset, target.length);
    await this.#serially(async () => {
      let file;
      try {
        file = await this.#opened();
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        throw this.#damaged(`its file ${this.#path} is gone from the data directory`);
      }
      if (!await file.readInto(offset, target)) {
        throw this.#damaged(`its file ${this.#path} is shorter than ${this.size} bytes`);
      }
    });
  }

  /**
   * Copies `bytes` into the blob at `offset`.
   *
   * @throws {InvalidArgumentError} When the range is not inside the blob.
   * @throws {AlreadySealedError} When the object is sealed or being sealed.
   * @throws {CapacityExceededError} When the disk is full.
   * @throws {ClosedError} When the blob has been freed.
   */
  async write(offset: number, bytes: Uint8Array): Promise<void> {
    const file = this.#writable();
    if (!(bytes instanceof Uint8Array)) {
      throw new InvalidArgumentError(`Cannot write ${this.#label}: bytes must be a Uint8Array`);
    }
    this.#checkRange("write", offset, bytes.length);
    await this.#serially(async () => {
      try {
        await file.write(offset, bytes);
      } catch (error) {
        throw fromFsError(error, `write ${bytes.length} bytes to ${this.#label}`);
      }
    });
  }

  /**
   * Refuses writes from now on, waits for those under way, and flushes the
   * file to disk. Part of sealing, by the store.
   *
   * @throws {AlreadySealedError} When the blob is not being created.
   */
  beginSeal(): Promise<void> {
    const file = this.#writable();
    this.#state = "SEALING";
    return this.#serially(() => file.sync());
  }

  /** Accepts writes again after a seal failed. */
  abortSeal(): void {
    if (this.#state === "SEALING") this.#state = "CREATING";
  }

  /**
   * Finishes sealing: closes the writable file; reads reopen it at `path`,
   * where the store has moved it.
   */
  commitSeal(path: string): Promise<void> {
    return this.#serially(() => {
      this.#closeFile();
      this.#path = path;
      if (this.#state === "SEALING") this.#state = "SEALED";
    });
  }

  /**
   * Opens the file now, once reads under way are done, so that later reads
   * no longer need its path: the store is about to move it.
   */
  hold(): Promise<void> {
    return this.#serially(async () => {
      await this.#opened();
    });
  }

  /** Records where the store moved the file of a blob it holds open. */
  moved(path: string): void {
    this.#path = path;
  }

  /** Closes the file once reads and writes under way are done; later ones throw. */
  release(): Promise<void> {
    this.#state = "RELEASED";
    return this.#serially(() => this.#closeFile());
  }

  /** The error of a read of a blob whose file was changed on disk behind the store. */
  #damaged(what: string): InternalError {
    return new InternalError(
      `Cannot read ${this.#label}: ${what} (changed on disk behind the daemon): the object is damaged; delete it and put it again`,
    );
  }

  async #opened(): Promise<BlobFile> {
    this.#file ??= await DenoBlobFile.open(this.#path);
    return this.#file;
  }

  #closeFile(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  #writable(): BlobFile {
    if (this.#state === "RELEASED") throw this.#released("write");
    if (this.#state !== "CREATING" || this.#file === undefined) {
      throw new AlreadySealedError(`Cannot write ${this.#label}: sealed`);
    }
    return this.#file;
  }

  #checkRange(action: "read" | "write", offset: number, length: number): void {
    if (this.#state === "RELEASED") throw this.#released(action);
    checkRange(action, offset, length, this.size, this.#label);
  }

  #released(action: "read" | "write"): ClosedError {
    return new ClosedError(`Cannot ${action} ${this.#label}: freed`);
  }

  #serially<T>(task: () => T | Promise<T>): Promise<T> {
    const result = this.#queue.then(task);
    this.#queue = result.catch(() => undefined);
    return result;
  }
}
