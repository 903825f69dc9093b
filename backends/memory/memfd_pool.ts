import { check } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import type { Tasks } from "./tasks.ts";

/** The page size size classes round to. */
const PAGE_SIZE = 4096;

/**
 * Blobs larger than this are written through a mapping that the pool has
 * already faulted in; smaller ones with `pwrite`, which needs no mapping.
 */
export const LARGE_BLOB = 256 * 1024;

/** The most memfds of one size class kept ready. */
const MAX_PER_CLASS = 256;
/** The most memfds ready or being prepared over all classes: each holds a file descriptor. */
const MAX_ENTRIES = 1024;
/** The most memfds prepared by one call on another thread. */
const BATCH = 128;
/** The most bytes prepared by one call: a large memfd gets a call of its own. */
const BATCH_BYTES = 8 * 1024 * 1024;
/** The most preparing calls running at once, each on a thread of Deno's blocking pool. */
const MAX_BATCHES = 2;
/** What `out_done` holds until a preparing call has finished. */
const NOT_DONE = -0x80000000;

/** A fresh memfd, allocated and ready for a new blob. */
export interface PreparedMemfd {
  /** The memfd, sealable, with nothing written yet. */
  readonly fd: number;
  /** A populated read-write shared mapping of it, for large blobs; null otherwise. */
  readonly pointer: Deno.PointerValue;
  /** Its size in bytes. */
  readonly capacity: number;
}

/**
 * The size class of a blob: its size rounded up to a page, then to one of
 * eight steps per power of two, so a memfd taken for it wastes under 12.5%.
 *
 * @param size Bytes, more than 0.
 * @returns The class size in bytes.
 */
export function sizeClass(size: number): number {
  const pages = Math.ceil(size / PAGE_SIZE);
  if (pages <= 8) return pages * PAGE_SIZE;
  const step = 2 ** Math.floor(Math.log2(pages - 1)) / 8;
  return Math.ceil(pages / step) * step * PAGE_SIZE;
}

/**
 * One `pk_memfd_prepare_many` call running on another thread. The C side
 * stores each fd (and pointer) as soon as that memfd is ready, and the result
 * in `done` last, so the JS thread takes memfds while the call still runs and
 * sees it finish without waiting for the event loop, which a tight loop of
 * awaits never turns.
 */
class Batch {
  readonly fds: Int32Array;
  readonly pointers: BigUint64Array | null;
  readonly done = new Int32Array([NOT_DONE]);
  /** The next memfd the JS thread has not taken. */
  next = 0;
  /** Allocations waiting for this batch to finish. */
  waiters = 0;
  settled = false;
  promise: Promise<unknown> = Promise.resolve();

  constructor(readonly count: number, readonly capacity: number, large: boolean) {
    this.fds = new Int32Array(count).fill(-1);
    this.pointers = large ? new BigUint64Array(count) : null;
  }

  /** Takes the next memfd if the C side has stored it. */
  take(): PreparedMemfd | undefined {
    if (this.next >= this.count) return undefined;
    const fd = Atomics.load(this.fds, this.next);
    if (fd < 0) return undefined;
    const pointer = this.pointers ? Deno.UnsafePointer.create(this.pointers[this.next]!) : null;
    this.next++;
    return { fd, pointer, capacity: this.capacity };
  }

  /** How many memfds the call made, once it has finished; undefined before. */
  made(): number | undefined {
    const done = Atomics.load(this.done, 0);
    return done === NOT_DONE ? undefined : Math.max(done, 0);
  }
}

class ClassPool {
  readonly ready: PreparedMemfd[] = [];
  readonly batches: Batch[] = [];
  /** How many memfds to keep ready: doubled each time a take finds none. */
  target = 1;
}

/**
 * Memfds prepared ahead of demand on Deno's blocking thread pool, so that a
 * new object starts with memory already allocated (and, for large blobs,
 * mapped and faulted in) instead of paying 2.4 µs per page on the JS thread.
 *
 * Each size class keeps a target count of memfds ready, which starts at one
 * and doubles whenever a take finds none, up to what fits in half the pool.
 * A take refills its class once it is a quarter short: a small class at
 * once, a large one at the next macrotask, so that faulting in a new large
 * memfd (tens of milliseconds of page allocation on another core) does not
 * compete with the write that follows the take. The pool holds at most
 * `maxBytes`, and never more than the room its store has left: ready and
 * in-flight memfds count against the store's capacity, and the store trims
 * the pool when objects need the room.
 */
export class MemfdPool {
  readonly #native: Native;
  readonly #maxBytes: number;
  readonly #room: () => number;
  readonly #tasks: Tasks;
  readonly #classes = new Map<number, ClassPool>();
  /** Size classes taken from since the last refill. */
  readonly #wanted = new Set<number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Bytes ready or being prepared. */
  #bytes = 0;
  /** Memfds ready or being prepared. */
  #entries = 0;
  /** Preparing calls that have not finished. */
  #running = 0;
  #closed = false;

  /**
   * Creates an empty pool.
   *
   * @param native The native library.
   * @param maxBytes The most bytes to keep ready; 0 turns pooling off.
   * @param room How many bytes the store has left for the pool.
   * @param tasks Where background work is tracked.
   */
  constructor(native: Native, maxBytes: number, room: () => number, tasks: Tasks) {
    this.#native = native;
    this.#maxBytes = maxBytes;
    this.#room = room;
    this.#tasks = tasks;
  }

  /** Bytes of memfds ready or being prepared. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * A memfd for a blob of `size` bytes: one of its size class from the pool,
   * or else a new one of exactly `size` bytes, made on this thread for a
   * small blob, and for a large one on another thread (or taken from a
   * preparing call already under way).
   *
   * @param size Bytes, more than 0.
   * @returns A memfd of `size` bytes or more, unmapped unless `size` > {@link LARGE_BLOB}.
   * @throws {CapacityExceededError} When the kernel has no memory for it.
   */
  async obtain(size: number): Promise<PreparedMemfd> {
    const capacity = sizeClass(size);
    const pool = this.#pooled(capacity) ? this.#classFor(capacity) : undefined;
    const large = size > LARGE_BLOB;
    if (!pool) return large ? await this.#prepareLarge(size) : this.#prepareSmall(size);
    const taken = this.#take(pool);
    if (!taken) pool.target = Math.min(pool.target * 2, this.#maxCount(capacity));
    if (large) this.#schedule(capacity);
    else this.#refill(capacity);
    if (taken) return taken;
    if (!large) return this.#prepareSmall(size);
    const batch = pool.batches.find((batch) => batch.count - batch.next > batch.waiters);
    if (batch) {
      batch.waiters++;
      await batch.promise;
      batch.waiters--;
      const landed = this.#take(pool);
      if (landed) return landed;
    }
    return await this.#prepareLarge(size);
  }

  /**
   * Releases ready memfds, largest first, until the pool holds at most `limit` bytes
   * (memfds still being prepared count, but cannot be released).
   *
   * @param limit The most bytes the pool may keep.
   */
  trim(limit: number): void {
    if (this.#bytes <= limit) return;
    const classes = [...this.#classes.entries()].sort(([a], [b]) => b - a);
    for (const [, pool] of classes) {
      this.#pollAll(pool);
      while (this.#bytes > limit && pool.ready.length > 0) {
        const entry = pool.ready.pop()!;
        this.#forget(entry);
        this.release(entry);
      }
    }
  }

  /**
   * Frees a memfd that was never handed to a blob, unmapping large ones on
   * another thread.
   *
   * @param entry The memfd.
   */
  release(entry: PreparedMemfd): void {
    const { symbols } = this.#native;
    if (entry.pointer === null) {
      check(symbols.pk_close(entry.fd), "close");
      return;
    }
    this.#tasks.track(
      "Releasing a pooled memfd",
      symbols.pk_unmap_close_nb(entry.fd, entry.pointer, BigInt(entry.capacity))
        .then((result) => check(result, "munmap and close")),
    );
  }

  /** Stops refills and releases every ready memfd; memfds still being prepared are released when they land. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#wanted.clear();
    this.trim(0);
  }

  #pooled(capacity: number): boolean {
    return !this.#closed && capacity <= this.#maxBytes / 2;
  }

  #classFor(capacity: number): ClassPool {
    let pool = this.#classes.get(capacity);
    if (!pool) {
      pool = new ClassPool();
      this.#classes.set(capacity, pool);
    }
    return pool;
  }

  /** The most memfds of a class to keep ready: within half the pool. */
  #maxCount(capacity: number): number {
    return Math.max(1, Math.min(MAX_PER_CLASS, Math.floor(this.#maxBytes / 2 / capacity)));
  }

  #schedule(capacity: number): void {
    this.#wanted.add(capacity);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      for (const wanted of this.#wanted) this.#refill(wanted);
      this.#wanted.clear();
    }, 0);
  }

  #take(pool: ClassPool): PreparedMemfd | undefined {
    this.#pollAll(pool);
    let entry = pool.ready.pop();
    for (let i = 0; !entry && i < pool.batches.length; i++) entry = pool.batches[i]!.take();
    if (entry) this.#forget(entry);
    return entry;
  }

  #pollAll(pool: ClassPool): void {
    for (const batch of [...pool.batches]) this.#poll(pool, batch);
  }

  #forget(entry: PreparedMemfd): void {
    this.#bytes -= entry.capacity;
    this.#entries--;
  }

  /**
   * Retires a batch whose call has finished: its untaken memfds become ready
   * (or are released once the pool is closed) and what it failed to make is
   * no longer counted.
   */
  #poll(pool: ClassPool, batch: Batch): void {
    const made = batch.made();
    if (made === undefined || batch.settled) return;
    batch.settled = true;
    this.#running--;
    pool.batches.splice(pool.batches.indexOf(batch), 1);
    const missing = batch.count - made;
    this.#bytes -= missing * batch.capacity;
    this.#entries -= missing;
    for (let entry = batch.take(); entry; entry = batch.take()) {
      if (this.#closed) {
        this.#forget(entry);
        this.release(entry);
      } else {
        pool.ready.push(entry);
      }
    }
  }

  /** Starts one preparing call for a class when it is a quarter or more short of its target and there is room. */
  #refill(capacity: number): void {
    const pool = this.#classFor(capacity);
    this.#pollAll(pool);
    if (this.#closed || this.#running >= MAX_BATCHES) return;
    const large = capacity > LARGE_BLOB;
    const coming = pool.batches.reduce((sum, batch) => sum + batch.count - batch.next, 0);
    const short = pool.target - pool.ready.length - coming;
    if (short < Math.ceil(pool.target / 4)) return;
    const room = Math.min(this.#maxBytes, this.#room()) - this.#bytes;
    const count = Math.min(
      short,
      BATCH,
      Math.max(1, Math.floor(BATCH_BYTES / capacity)),
      Math.floor(room / capacity),
      MAX_ENTRIES - this.#entries,
    );
    if (count <= 0) return;
    const batch = new Batch(count, capacity, large);
    this.#bytes += count * capacity;
    this.#entries += count;
    this.#running++;
    pool.batches.push(batch);
    batch.promise = this.#native.symbols.pk_memfd_prepare_many_nb(
      count,
      BigInt(capacity),
      1,
      batch.fds,
      batch.pointers,
      batch.done,
    ).then(() => {
      this.#poll(pool, batch);
      // A call makes at most BATCH_BYTES: keep going to the target.
      this.#refill(capacity);
    });
    this.#tasks.track("Refilling the memfd pool", batch.promise);
  }

  async #prepareLarge(size: number): Promise<PreparedMemfd> {
    const fd = new Int32Array(1);
    const pointer = new BigUint64Array(1);
    const result = await this.#native.symbols.pk_memfd_prepare_nb(BigInt(size), 1, fd, pointer);
    check(result, "memfd prepare");
    return { fd: fd[0]!, pointer: Deno.UnsafePointer.create(pointer[0]!), capacity: size };
  }

  #prepareSmall(size: number): PreparedMemfd {
    const fd = new Int32Array(1);
    check(this.#native.symbols.pk_memfd_prepare(BigInt(size), 1, fd, null), "memfd prepare");
    return { fd: fd[0]!, pointer: null, capacity: size };
  }
}
