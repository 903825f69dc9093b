/**
 * Where the pieces of an object arriving from other daemons land: a memfd
 * of its own that the CREATE takes over, written with `pwrite`, or else the
 * CREATE blob's writable view.
 *
 * A memfd written whole with `pwrite` gets each page as the write comes to
 * it, neither zeroed first nor faulted into a page table: the object's
 * memory needs no preparing before its first byte arrives (preparing 256 MiB
 * took a third of a fetch on miss, before a byte came), and this process
 * never maps it writable. It is also the least CPU a byte can cost to land
 * (bench/landing_bench.ts: a receive straight into mapped pages, which fault
 * in one at a time, costs about 2.5 times as much; pages made ahead on
 * another thread, 1.1 to 1.6 times, counting that thread), which matters
 * where a broadcast keeps every CPU busy. A write that finds no memory fails with an errno,
 * a typed CAPACITY_EXCEEDED, where a store through a mapping would have
 * ended the process with SIGBUS. Verified bytes are read (relayed, streamed,
 * hashed whole) through a read-only mapping made from a read-only
 * descriptor, which leaves the blob free to take every seal.
 *
 * @module
 */
import { Access } from "../../core/lease.ts";
import { CapacityExceededError, UnsupportedError } from "../../core/errors.ts";
import type { Acquired, Peer } from "../../core/peer.ts";
import type { Meta } from "../../core/validate.ts";
import { check } from "../../native/errno.ts";
import { loadNative, type Native } from "../../native/load.ts";
import { Mapping } from "../../native/mapping.ts";
import { LARGE_BLOB } from "../../native/memfd_pool.ts";

/** Where a transfer's pieces land, and where its verified bytes are read. */
export interface Landing {
  /** The object's size in bytes. */
  readonly size: number;
  /**
   * The object's bytes, for reading the ranges verified: read-only over a
   * memfd, made on first use (see {@link Landing.range}). Detached (length 0)
   * once the landing is closed.
   */
  readonly view: Uint8Array;
  /**
   * Bytes `start` to `end` (exclusive) of the object, without a copy: a
   * subarray of {@link Landing.view}, and detached with it. Over a memfd, the
   * view is made only when a range is first asked for (to relay a piece, or
   * hash it again): V8 counts the bytes of a buffer over outside memory as
   * memory its heap holds, and a buffer the size of a large object sets off
   * a full garbage collection (about 50 ms of CPU for 256 MiB). A transfer
   * whose pieces come hashed and that relays none makes none. (Buffers of a
   * piece each were worse: every 64 MiB of them set off another.)
   *
   * @throws {RangeError} When the range is not within the object.
   */
  range(start: number, end: number): Uint8Array;
  /**
   * The memfd that bytes are written into at their offsets, with `pwrite`;
   * undefined when they go into {@link Landing.view}, writable then.
   *
   * @throws {RangeError} When the landing is closed.
   */
  readonly fd: number | undefined;
  /**
   * Writes `bytes` at `offset`.
   *
   * @throws {CapacityExceededError} When there is no memory for them.
   * @throws {RangeError} When the landing is closed.
   */
  write(offset: number, bytes: Uint8Array): void;
  /**
   * Writes `bytes` at `offset` as {@link Landing.write} does, but into a
   * memfd off the JS thread: a write there waits for the file's lock while
   * the pieces still arriving are written on other threads (up to half a
   * second on a loaded machine, seen), and the event loop must not wait
   * with it. `bytes` must stay as they are until the promise settles.
   *
   * @throws {CapacityExceededError} When there is no memory for them.
   * @throws {RangeError} When the landing is closed.
   */
  land(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * Keeps {@link Landing.view}'s memory mapped past {@link Landing.close}
   * until the function returned is called (once or more): a relay response
   * still sending from it.
   */
  hold(): () => void;
  /** Ends writing; the view goes once nothing holds it. Idempotent. */
  close(): void;
}

/** Buffers shorter than this may sit in V8's heap; see {@link MemfdLanding.land}. */
const OFF_HEAP_MIN = 64 << 10;

/** A CREATE lease of an object and where its pieces land. */
export interface LandingCreate {
  readonly created: Acquired;
  readonly landing: Landing;
}

/**
 * Creates the object `id` of `size` bytes in `peer` (a CREATE lease) with
 * where its pieces are to land: a memfd of its own that the peer takes over
 * as the object's blob, when the native library loads, the object is larger
 * than `LARGE_BLOB` and the peer keeps blobs in memfds; else the blob's
 * writable view.
 *
 * @throws {CapacityExceededError} When there is no room or no memory for it.
 * @throws {UnsupportedError} When the peer's blobs have no view.
 */
export async function createLanding(
  peer: Peer,
  id: string,
  size: number,
  meta: Meta,
): Promise<LandingCreate> {
  const native = size > LARGE_BLOB ? nativeOrUndefined() : undefined;
  const landing = native === undefined ? undefined : openMemfd(native, size);
  if (landing !== undefined) {
    try {
      const created = await peer.acquire(id, Access.CREATE, {
        size,
        meta,
        memfds: [landing.memfd],
      });
      landing.handedOver();
      return { created, landing };
    } catch (error) {
      landing.close();
      if (!(error instanceof UnsupportedError)) throw error;
    }
  }
  const created = await peer.acquire(id, Access.CREATE, { size, meta });
  if (size === 0) return { created, landing: viewLanding(new Uint8Array(0)) };
  const blob = created.blobs[0]!;
  const view = blob.openView();
  if (view === undefined) {
    await peer.discard(created.lease.id).catch(() => {});
    throw new UnsupportedError("Cannot fetch into a peer whose blobs have no view");
  }
  return { created, landing: viewLanding(view, () => blob.closeView(view)) };
}

/**
 * A memfd landing, or undefined where one cannot be made for another reason
 * than memory (no /proc to reopen it read-only, say): the blob's view then.
 */
function openMemfd(native: Native, size: number): MemfdLanding | undefined {
  try {
    return MemfdLanding.open(native, size);
  } catch (error) {
    if (error instanceof CapacityExceededError) throw error;
    return undefined;
  }
}

/** A landing in a writable view, closed by `close` (the blob's `closeView`). */
export function viewLanding(view: Uint8Array, close: () => void = () => {}): Landing {
  let closed = false;
  return {
    size: view.length,
    view,
    range: (start, end) => {
      checkRange(start, end, view.length);
      return view.subarray(start, end);
    },
    fd: undefined,
    write: (offset, bytes) => view.set(bytes, offset),
    land: (offset, bytes) => Promise.resolve(view.set(bytes, offset)),
    hold: () => () => {},
    close: () => {
      if (closed) return;
      closed = true;
      close();
    },
  };
}

function nativeOrUndefined(): Native | undefined {
  try {
    return loadNative();
  } catch {
    return undefined;
  }
}

/**
 * A memfd the object's bytes are written into with `pwrite`, and a
 * read-only mapping of it; see the module comment.
 */
export class MemfdLanding implements Landing {
  readonly size: number;
  readonly #native: Native;
  /** The descriptor pieces are written through; -1 once closed. */
  #fd: number;
  /** The descriptor handed to the CREATE, until it is. */
  #handOver: number;
  readonly #mapping: Mapping;
  /** The view of the whole object, once asked for. */
  #view: Uint8Array | undefined;
  /** Holds of the view not given back. */
  #holds = 0;
  #closed = false;

  private constructor(
    native: Native,
    size: number,
    fd: number,
    handOver: number,
    mapping: Mapping,
  ) {
    this.size = size;
    this.#native = native;
    this.#fd = fd;
    this.#handOver = handOver;
    this.#mapping = mapping;
  }

  /**
   * A new memfd of `size` bytes, none of them allocated yet, and its
   * read-only mapping.
   *
   * @throws {CapacityExceededError} When the kernel has no memory or descriptor for it.
   */
  static open(native: Native, size: number): MemfdLanding {
    const { symbols } = native;
    const out = new Int32Array(1);
    check(symbols.pk_memfd_prepare(BigInt(size), 0, out, null), "memfd_create");
    const memfd = out[0]!;
    const opened: number[] = [memfd];
    try {
      const fd = check(symbols.pk_dup(memfd), "dup");
      opened.push(fd);
      const readOnly = check(symbols.pk_reopen_readonly(memfd), "open read-only");
      let mapping: Mapping;
      try {
        mapping = Mapping.map(native, readOnly, size);
      } finally {
        symbols.pk_close(readOnly);
      }
      return new MemfdLanding(native, size, fd, memfd, mapping);
    } catch (error) {
      for (const fd of opened) symbols.pk_close(fd);
      throw error;
    }
  }

  /**
   * The memfd for the CREATE (`AcquireOptions.memfds`), which takes it over
   * when it succeeds (then call {@link MemfdLanding.handedOver}); a landing
   * closed before then closes it.
   */
  get memfd(): number {
    return this.#handOver;
  }

  /** The CREATE took {@link MemfdLanding.memfd} over: it is no longer the landing's to close. */
  handedOver(): void {
    this.#handOver = -1;
  }

  get view(): Uint8Array {
    return this.#view ??= this.#mapping.closed ? new Uint8Array(0) : this.#mapping.openView();
  }

  range(start: number, end: number): Uint8Array {
    checkRange(start, end, this.size);
    const view = this.view;
    // Closed and unmapped: the view is detached, and so is every range.
    return view.length === this.size ? view.subarray(start, end) : new Uint8Array(0);
  }

  get fd(): number {
    if (this.#fd < 0) throw new RangeError("Cannot land bytes: the landing is closed");
    return this.#fd;
  }

  write(offset: number, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const result = this.#native.symbols.pk_pwrite_all(
      this.fd,
      bytes,
      BigInt(bytes.length),
      BigInt(offset),
    );
    landed(result, bytes.length);
  }

  async land(offset: number, bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    const { symbols } = this.#native;
    // A descriptor of its own: the landing may close meanwhile, and its
    // number be another file's by the time the thread writes.
    const fd = check(symbols.pk_dup(this.fd), "dup");
    // A small buffer may sit in V8's heap, where it can move while the
    // thread reads it: a copy outside it.
    const from = bytes.buffer.byteLength < OFF_HEAP_MIN ? offHeap(bytes) : bytes;
    try {
      const result = await symbols.pk_pwrite_all_nb(
        fd,
        Deno.UnsafePointer.of(from as Uint8Array<ArrayBuffer>),
        BigInt(from.length),
        BigInt(offset),
      );
      // Kept alive until the call is done.
      void from.length;
      landed(result, from.length);
    } finally {
      symbols.pk_close(fd);
    }
  }

  hold(): () => void {
    this.#holds++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#holds--;
      this.#unmapIfDone();
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const { symbols } = this.#native;
    if (this.#handOver >= 0) symbols.pk_close(this.#handOver);
    this.#handOver = -1;
    symbols.pk_close(this.#fd);
    this.#fd = -1;
    this.#unmapIfDone();
  }

  #unmapIfDone(): void {
    if (!this.#closed || this.#holds > 0) return;
    // One munmap: the mapping is read-only and mostly untouched, unless relays read it.
    const range = this.#mapping.detach();
    if (range !== undefined) {
      check(this.#native.symbols.pk_munmap_once(range.pointer, BigInt(range.length)), "munmap");
    }
  }
}

/** A copy of `bytes` in a buffer of its own, outside V8's heap. */
function offHeap(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(new ArrayBuffer(bytes.length));
  copy.set(bytes);
  return copy;
}

/** Checks what `pwrite` of `length` bytes returned; no memory for them is CAPACITY_EXCEEDED. */
function landed(result: number | bigint, length: number): void {
  try {
    check(result, "pwrite");
  } catch (error) {
    if (!(error instanceof CapacityExceededError)) throw error;
    throw new CapacityExceededError(
      `Cannot land ${length} bytes of an arriving object: no memory for them`,
      { cause: error },
    );
  }
}

function checkRange(start: number, end: number, size: number): void {
  if (
    !(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end &&
      end <= size)
  ) {
    throw new RangeError(`Cannot view bytes ${start} to ${end} of an object of ${size}`);
  }
}
