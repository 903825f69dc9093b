/**
 * Contiguous bytes of an object, held by a backend.
 *
 * Writes are allowed while the object is being created; once sealed the bytes
 * never change. A backend that holds the bytes in memory hands out zero-copy
 * views; each view is detached by {@link Blob.closeView} or when the blob is
 * freed, so no view outlives the memory behind it.
 */
export interface Blob {
  /** Size in bytes. */
  readonly size: number;
  /**
   * A file descriptor holding the bytes that another process may map (a
   * memfd), for transports that pass it over a Unix socket; absent for
   * backends without one. Valid while the blob is.
   */
  readonly fd?: number | undefined;
  /**
   * Optional: the memfd holding the bytes, for use inside this process only
   * (the native GET listener sends ranges of it with sendfile). Unlike
   * {@link Blob.fd} it is never handed to another process, so taking it
   * seals nothing and changes no mapping. It holds the blob's bytes where
   * they have been written, and all of them once sealed. Valid while the
   * blob is.
   */
  readonly localFd?: number | undefined;
  /**
   * Opens a zero-copy view of the bytes, or returns undefined when this
   * backend has none. Before seal the view is writable.
   */
  openView(): Uint8Array | undefined;
  /** Detaches a view from {@link Blob.openView}: it drops to length 0. */
  closeView(view: Uint8Array): void;
  /** Copies `length` bytes from `offset` into a new array. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional, for backends whose bytes are not in memory (files): fills
   * `target` with the bytes from `offset`, so a caller reads straight into
   * memory it owns, such as a writable view of another blob.
   */
  readInto?(offset: number, target: Uint8Array): Promise<void>;
  /** Copies `bytes` into the blob at `offset`. */
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * Optional, for backends that seal in the background: resolves once the
   * bytes of a sealed blob are sealed against every process that may hold
   * them, or returns undefined when nothing is under way. A peer lets
   * readers in only then.
   */
  settled?(): Promise<void> | undefined;
}
