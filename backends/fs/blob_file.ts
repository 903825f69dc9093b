import { readFull, writeAll } from "./io.ts";
import { FILE_MODE } from "./modes.ts";

/** The open file of one blob: how a `FileBlob` reads, writes and flushes it. */
export interface BlobFile {
  /** Writes all of `bytes` at `offset`. */
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * Fills `target` from `offset`.
   *
   * @returns False when the file ended first.
   */
  readInto(offset: number, target: Uint8Array): Promise<boolean>;
  /** Flushes the file's data to disk. */
  sync(): Promise<void>;
  /** Closes the file; idempotent. */
  close(): void;
}

/** Makes the files of new blobs. */
export interface BlobFileOpener {
  /**
   * Creates a file that must not exist yet, `size` bytes long, open for
   * reading and writing.
   */
  create(path: string, size: number): Promise<BlobFile>;
  /**
   * Settles once no work of this opener is under way and nothing it
   * started may call into the runtime any more; a store's close awaits it.
   */
  idle?(): Promise<void>;
}

/** A {@link BlobFile} over a `Deno.FsFile`: each transfer a seek, then the whole range. */
export class DenoBlobFile implements BlobFile {
  readonly #file: Deno.FsFile;
  #closed = false;

  /** @param file The open file, which this takes over. */
  constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /** Opens an existing file read-only. */
  static async open(path: string): Promise<DenoBlobFile> {
    return new DenoBlobFile(await Deno.open(path, { read: true }));
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    await this.#file.seek(offset, Deno.SeekMode.Start);
    await writeAll(this.#file, bytes);
  }

  async readInto(offset: number, target: Uint8Array): Promise<boolean> {
    await this.#file.seek(offset, Deno.SeekMode.Start);
    return await readFull(this.#file, target);
  }

  sync(): Promise<void> {
    return this.#file.sync();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/** Creates blob files with Deno's file system calls, on its blocking thread pool. */
export const denoBlobFiles: BlobFileOpener = {
  async create(path: string, size: number): Promise<BlobFile> {
    const file = await Deno.open(path, {
      read: true,
      write: true,
      createNew: true,
      mode: FILE_MODE,
    });
    try {
      await file.truncate(size);
    } catch (error) {
      file.close();
      throw error;
    }
    return new DenoBlobFile(file);
  },
};
