/** Counts the jobs the native I/O threads of `NativeFileIo` finish, for tests. */
import type { BlobFile } from "../../backends/fs/blob_file.ts";
import type { NativeFileIo } from "../../backends/fs/native_io.ts";

/** The jobs counted so far, until disposed. */
export interface JobCount extends Disposable {
  /** Jobs that have finished, with success or an error, since counting began. */
  readonly completed: number;
}

/**
 * Counts the jobs `io` runs on its threads (create, write, fsync) from now
 * until the count is disposed, by wrapping its methods on the instance.
 */
export function countJobs(io: NativeFileIo): JobCount {
  let completed = 0;
  const counted =
    <A extends unknown[], R>(method: (...args: A) => Promise<R>) => (...args: A): Promise<R> =>
      method.apply(io, args).finally(() => completed++);
  const own = io as {
    create: (path: string, size: number) => Promise<BlobFile>;
    write: (fd: number, offset: number, bytes: Uint8Array) => Promise<void>;
    sync: (fd: number) => Promise<void>;
  };
  own.create = counted(io.create);
  own.write = counted(io.write);
  own.sync = counted(io.sync);
  return {
    get completed() {
      return completed;
    },
    [Symbol.dispose]() {
      // The prototype's methods show through again.
      delete (own as Partial<typeof own>).create;
      delete (own as Partial<typeof own>).write;
      delete (own as Partial<typeof own>).sync;
    },
  };
}
