/**
 * The memfd pool: one idea, memfds prepared ahead of demand and taken back
 * from freed blobs, by size class, with the policy that sizes and trims the
 * pool. Used by the memory backend and by the Unix-socket client.
 *
 * @module
 */
import { check, Errno, errnoError } from "./errno.ts";
import type { Native } from "./load.ts";
import type { Tasks } from "./tasks.ts";

/** The page size size classes round to. */
const PAGE_SIZE = 4096;

/**
 * Blobs larger than this live in a memfd from the start, mapped by the pool
 * and faulted in beforehand; smaller ones live on the heap until their fd
 * is handed out.
 */
export const LARGE_BLOB = 256 * 1024;

/** The most memfds of one size class kept ready. */
const MAX_PER_CLASS = 64;
/** The most memfds ready or being prepared over all classes: each holds a file descriptor. */
const MAX_ENTRIES = 256;
/** The most bytes prepared by one call: a memfd of 8 MiB or more gets a call of its own. */
const BATCH_BYTES = 8 * 1024 * 1024;
/** The most preparing calls running at once, each on a thread of Deno's blocking pool. */
const MAX_BATCHES = 2;
/** What `out_done` holds until a preparing call has finished. */
const NOT_DONE = -0x80000000;

/**
 * How long a pool stays full without use, in milliseconds, before it gives
 * its ready memfds back: long enough to carry a burst of writes over its
 * pauses, short enough that an idle process holds no memory it does not use.
 */
export const POOL_IDLE_MS = 2000;

/** A memfd ready for a new blob: allocated, mapped and faulted in. */
export interface PreparedMemfd {
  /** The memfd, sealable, which no other process holds. */
  readonly fd: number;
  /** Its read-write shared mapping. */
  readonly pointer: NonNullable<Deno.PointerValue>;
  /** Its size and the mapping's length, in bytes. */
  readonly capacity: number;
  /**
   * How many bytes at the start still hold a freed object's data (recycled
   * memfds), which the new blob must overwrite or zero before they are read;
   * the rest is zero.
   */
  readonly stale: number;
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
 * One `pk_memfd_prepare_many` or `pk_recycle` call running on another
 * thread. The C side stores each fd (after its pointer) as soon as that
 * memfd is ready, and the result in `done` last, so the JS thread takes
 * memfds while the call still runs and sees it finish without waiting for
 * the event loop, which a tight loop of awaits never turns.
 *
 * The results go to memory the native library owns (`pk_alloc`), not to
 * typed arrays: nothing waits for the call when the process exits, and the
 * runtime's teardown would free JS memory under the thread still storing
 * into it. The memory is freed only once `done` shows the call finished.
 */
class Batch {
  readonly fds: Int32Array;
  readonly pointers: BigUint64Array;
  readonly done: Int32Array;
  /** The start of the C-owned results: `count` pointers, then `count` fds, then `done`. */
  readonly #memory: Deno.PointerObject;
  readonly #buffer: ArrayBuffer;
  /** The next memfd the JS thread has not taken. */
  next = 0;
  /** Allocations waiting for this batch to finish. */
  waiters = 0;
  promise: Promise<unknown> = Promise.resolve();

  /**
   * @throws {CapacityExceededError} When there is no memory for the results.
   */
  constructor(
    readonly native: Native,
    readonly pool: ClassPool,
    readonly count: number,
    readonly capacity: number,
    readonly stale = 0,
  ) {
    const bytes = count * 12 + 4;
    const memory = native.symbols.pk_alloc(BigInt(bytes));
    if (memory === null) throw errnoError(Errno.ENOMEM, "allocating call results");
    this.#memory = memory;
    this.#buffer = Deno.UnsafePointerView.getArrayBuffer(memory, bytes);
    this.pointers = new BigUint64Array(this.#buffer, 0, count);
    this.fds = new Int32Array(this.#buffer, count * 8, count).fill(-1);
    this.done = new Int32Array(this.#buffer, count * 12, 1);
    this.done[0] = NOT_DONE;
  }

  /** Where the C side stores the pointers. */
  get pointersOut(): Deno.PointerObject {
    return this.#memory;
  }

  /** Where the C side stores the fds. */
  get fdsOut(): Deno.PointerObject {
    return Deno.UnsafePointer.offset(this.#memory, this.count * 8)!;
  }

  /** Where the C side stores its result, last. */
  get doneOut(): Deno.PointerObject {
    return Deno.UnsafePointer.offset(this.#memory, this.count * 12)!;
  }

  /** Takes the next memfd if the C side has stored it. */
  take(): PreparedMemfd | undefined {
    if (this.next >= this.count) return undefined;
    const fd = Atomics.load(this.fds, this.next);
    if (fd < 0) return undefined;
    const pointer = Deno.UnsafePointer.create(this.pointers[this.next]!)!;
    this.next++;
    return { fd, pointer, capacity: this.capacity, stale: this.stale };
  }

  /** How many memfds the call made, once it has finished; undefined before. */
  made(): number | undefined {
    const done = Atomics.load(this.done, 0);
    return done === NOT_DONE ? undefined : Math.max(done, 0);
  }

  /**
   * Frees the results' memory, once {@link made} has shown the call finished
   * and every memfd has been taken; the views drop to length 0.
   */
  free(): void {
    this.#buffer.transfer(0);
    this.native.symbols.pk_free(this.#memory);
  }
}

class ClassPool {
  readonly ready: PreparedMemfd[] = [];
  readonly batches: Batch[] = [];
  /** How many memfds to keep ready: doubled each time a take finds none. */
  target = 1;
}

/**
 * Memfds for large blobs, allocated, mapped and faulted in ahead of demand
 * on Deno's blocking thread pool, so that writing a new object does not pay
 * for each page on the JS thread; and memfds of freed blobs that no other
 * process received, handed out again.
 *
 * A take that leaves its size class with nothing ready or coming refills
 * the class at the next macrotask (faulting in new memory is slow, even on
 * another core, and should not compete with the write that
 * follows the take), with as many memfds as its target count, which starts
 * at one and doubles whenever a take finds none, up to what fits in half the
 * pool. While objects are freed as fast as they are made, recycling alone
 * keeps a class supplied and nothing new is allocated. The pool holds at
 * most `maxBytes`, and never more than the room its store has left: ready
 * and in-flight memfds count against the store's capacity, and the store
 * trims the pool when objects need the room. After `idleMs` without a
 * take or a recycle, every ready memfd is given back.
 */
export class MemfdPool {
  readonly #native: Native;
  readonly #maxBytes: number;
  readonly #room: () => number;
  readonly #tasks: Tasks;
  readonly #idleMs: number;
  readonly #classes = new Map<number, ClassPool>();
  /** Size classes taken from since the last refill. */
  readonly #wanted = new Set<number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Bytes ready or being prepared. */
  #bytes = 0;
  /** Memfds ready or being prepared. */
  #entries = 0;
  /** Preparing calls not yet seen to finish. */
  readonly #running = new Set<Batch>();
  /** When the pool was last used, by `performance.now()`. */
  #lastUse = 0;
  /** The one timer that looks whether the pool has been idle long enough. */
  #idle: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * Creates an empty pool.
   *
   * @param native The native library.
   * @param maxBytes The most bytes to keep ready; 0 turns pooling off.
   * @param room How many bytes the store has left for the pool.
   * @param tasks Where background work is tracked.
   * @param idleMs Milliseconds without use after which ready memfds are given back; 0 keeps them.
   */
  constructor(
    native: Native,
    maxBytes: number,
    room: () => number,
    tasks: Tasks,
    idleMs = POOL_IDLE_MS,
  ) {
    this.#native = native;
    this.#maxBytes = maxBytes;
    this.#room = room;
    this.#tasks = tasks;
    this.#idleMs = maxBytes > 0 ? idleMs : 0;
  }

  /** Bytes of memfds ready or being prepared. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Memfds ready or being prepared. */
  get memfds(): number {
    return this.#entries;
  }

  /**
   * A memfd for a blob of `size` bytes: one of its size class from the pool,
   * one from a preparing call under way, or else a new one, made on another
   * thread.
   *
   * @param size Bytes, more than {@link LARGE_BLOB}.
   * @returns A memfd of `size` bytes or more.
   * @throws {CapacityExceededError} When the kernel has no memory for it.
   */
  async obtain(size: number): Promise<PreparedMemfd> {
    this.#used();
    const capacity = sizeClass(size);
    // A memfd of a class can be recycled later; one too large to pool is cut to size.
    if (!this.#pooled(capacity)) return await this.#prepare(size);
    const pool = this.#classFor(capacity);
    const taken = this.#take(pool);
    if (!taken) pool.target = Math.min(pool.target * 2, this.#maxCount(capacity));
    if (pool.ready.length + this.#coming(pool) === 0) this.#schedule(capacity);
    if (taken) return taken;
    const batch = pool.batches.find((batch) => batch.count - batch.next > batch.waiters);
    if (batch) {
      batch.waiters++;
      await batch.promise;
      batch.waiters--;
      const landed = this.#take(pool);
      if (landed) return landed;
    }
    return await this.#prepare(capacity);
  }

  /**
   * A memfd for a blob of `size` bytes if one of its size class is ready
   * now; else undefined. Call {@link MemfdPool.supply} afterwards.
   *
   * @param size Bytes, more than 0.
   * @returns A memfd of `size` bytes or more, or undefined.
   */
  takeReady(size: number): PreparedMemfd | undefined {
    this.#used();
    const capacity = sizeClass(size);
    if (!this.#pooled(capacity)) return undefined;
    const pool = this.#classFor(capacity);
    const taken = this.#take(pool);
    if (!taken) pool.target = Math.min(pool.target * 2, this.#maxCount(capacity));
    return taken;
  }

  /**
   * Refills the size class of `size` in the background if nothing of it is
   * ready or coming; for callers of {@link MemfdPool.takeReady}, once the
   * work that would compete with the refill is done.
   *
   * @param size Bytes, more than 0.
   */
  supply(size: number): void {
    const capacity = sizeClass(size);
    if (!this.#pooled(capacity)) return;
    const pool = this.#classFor(capacity);
    if (pool.ready.length + this.#coming(pool) === 0) this.#schedule(capacity);
  }

  /**
   * Takes back the memfd and read-write mapping of a freed blob that no other
   * process ever received, to hand out again: reusing memory costs a fraction
   * of allocating and faulting in fresh pages. Its first `size` bytes keep
   * the freed blob's data, so the next blob zeroes what it does not
   * overwrite before anyone reads it (see `PreparedMemfd.stale`): a put that
   * writes every byte, the common case, zeroes nothing. A memfd the blob cut
   * below its size class gets its size back on another thread.
   *
   * @param fd The memfd.
   * @param pointer Its read-write mapping.
   * @param capacity The mapping's length, which must be a size class.
   * @param size The freed blob's size.
   * @returns Whether the pool took it; if not, the caller frees it.
   */
  recycle(
    fd: number,
    pointer: NonNullable<Deno.PointerValue>,
    capacity: number,
    size: number,
  ): boolean {
    if (!this.#pooled(capacity) || sizeClass(capacity) !== capacity) return false;
    this.#used();
    const pool = this.#classFor(capacity);
    const room = Math.min(this.#maxBytes, this.#room()) - this.#bytes;
    const kept = pool.ready.length + this.#coming(pool);
    if (capacity > room || this.#entries >= MAX_ENTRIES || kept >= this.#maxCount(capacity)) {
      return false;
    }
    if (size === capacity) {
      this.#bytes += capacity;
      this.#entries++;
      pool.ready.push({ fd, pointer, capacity, stale: size });
      return true;
    }
    const batch = new Batch(this.#native, pool, 1, capacity, size);
    batch.pointers[0] = BigInt(Deno.UnsafePointer.value(pointer));
    this.#start(batch);
    batch.promise = this.#native.symbols.pk_recycle_nb(
      fd,
      pointer,
      BigInt(size),
      BigInt(capacity),
      batch.fdsOut,
      batch.doneOut,
    ).then(() => this.#poll(batch));
    this.#tasks.track("Recycling a memfd", batch.promise);
    return true;
  }

  /**
   * Releases ready memfds, largest first, until the pool holds at most `limit` bytes
   * (memfds still being prepared count, but cannot be released).
   *
   * @param limit The most bytes the pool may keep.
   */
  trim(limit: number): void {
    if (this.#bytes <= limit) return;
    this.#pollRunning();
    const classes = [...this.#classes.entries()].sort(([a], [b]) => b - a);
    for (const [, pool] of classes) {
      while (this.#bytes > limit && pool.ready.length > 0) {
        const entry = pool.ready.pop()!;
        this.#forget(entry);
        this.release(entry);
      }
    }
  }

  /**
   * Frees a memfd that was never handed to a blob, on another thread.
   *
   * @param entry The memfd.
   */
  release(entry: PreparedMemfd): void {
    this.#tasks.track(
      "Releasing a pooled memfd",
      this.#native.symbols.pk_unmap_close_nb(entry.fd, entry.pointer, BigInt(entry.capacity))
        .then((result) => check(result, "munmap and close")),
    );
  }

  /** Stops refills and releases every ready memfd; memfds still being prepared are released when they land. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#idle);
    this.#idle = undefined;
    this.#wanted.clear();
    this.trim(0);
  }

  /**
   * Notes a use, and has the pool looked at once it may have gone idle. A
   * timer costs more to set or clear than a use, so one runs at a time,
   * not one per use: when it fires early, it waits for the rest.
   */
  #used(): void {
    this.#lastUse = performance.now();
    if (this.#idle === undefined && this.#idleMs > 0 && !this.#closed) this.#idleIn(this.#idleMs);
  }

  #idleIn(delay: number): void {
    const idle = this.#idle = setTimeout(() => {
      this.#idle = undefined;
      const left = this.#lastUse + this.#idleMs - performance.now();
      if (left > 0) return this.#idleIn(left);
      this.trim(0);
      // Memfds still being prepared are given back once they land.
      if (this.#bytes > 0) this.#idleIn(this.#idleMs);
    }, delay);
    Deno.unrefTimer(idle);
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
    this.#pollRunning();
    let entry = pool.ready.pop();
    for (let i = 0; !entry && i < pool.batches.length; i++) entry = pool.batches[i]!.take();
    if (entry) this.#forget(entry);
    return entry;
  }

  #forget(entry: PreparedMemfd): void {
    this.#bytes -= entry.capacity;
    this.#entries--;
  }

  /** Memfds of a class being prepared and not yet taken. */
  #coming(pool: ClassPool): number {
    return pool.batches.reduce((sum, batch) => sum + batch.count - batch.next, 0);
  }

  /** Counts a batch's memfds in the pool from its start. */
  #start(batch: Batch): void {
    this.#bytes += batch.count * batch.capacity;
    this.#entries += batch.count;
    this.#running.add(batch);
    batch.pool.batches.push(batch);
  }

  #pollRunning(): void {
    for (const batch of this.#running) this.#poll(batch);
  }

  /**
   * Retires a batch whose call has finished: its untaken memfds become ready
   * (or are released once the pool is closed) and what it failed to make is
   * no longer counted.
   */
  #poll(batch: Batch): void {
    // A retired batch's results are freed.
    if (!this.#running.has(batch)) return;
    const made = batch.made();
    if (made === undefined) return;
    this.#running.delete(batch);
    const pool = batch.pool;
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
    batch.free();
  }

  /** Starts one preparing call for a class that has run out, when there is room. */
  #refill(capacity: number): void {
    const pool = this.#classFor(capacity);
    this.#pollRunning();
    if (this.#closed || this.#running.size >= MAX_BATCHES) return;
    if (pool.ready.length + this.#coming(pool) > 0) return;
    const room = Math.min(this.#maxBytes, this.#room()) - this.#bytes;
    const count = Math.min(
      pool.target,
      Math.max(1, Math.floor(BATCH_BYTES / capacity)),
      Math.floor(room / capacity),
      MAX_ENTRIES - this.#entries,
    );
    if (count <= 0) return;
    const batch = new Batch(this.#native, pool, count, capacity);
    this.#start(batch);
    batch.promise = this.#native.symbols.pk_memfd_prepare_many_nb(
      count,
      BigInt(capacity),
      1,
      batch.fdsOut,
      batch.pointersOut,
      batch.doneOut,
    ).then(() => {
      this.#poll(batch);
      // Objects may have taken the room meanwhile.
      this.trim(Math.min(this.#maxBytes, this.#room()));
    });
    this.#tasks.track("Refilling the memfd pool", batch.promise);
  }

  /** A new memfd of `capacity` bytes, made on another thread. */
  async #prepare(capacity: number): Promise<PreparedMemfd> {
    // A batch of one, outside every size class.
    const batch = new Batch(this.#native, new ClassPool(), 1, capacity);
    try {
      const result = await this.#native.symbols.pk_memfd_prepare_many_nb(
        1,
        BigInt(capacity),
        1,
        batch.fdsOut,
        batch.pointersOut,
        batch.doneOut,
      );
      check(result, "memfd prepare");
      return batch.take()!;
    } finally {
      batch.free();
    }
  }
}
