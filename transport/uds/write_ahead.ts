import { setImmediate } from "node:timers";
import { check } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import { MemfdPool, POOL_IDLE_MS, type PreparedMemfd } from "../../native/memfd_pool.ts";
import { Tasks } from "../../native/tasks.ts";

/**
 * Memfds a client fills itself for large puts, allocated, mapped and
 * faulted in ahead of time on another thread. Writing into memory the
 * daemon allocated means faulting in every page of it in this process
 * first, which costs several times the copy; a put into one of these
 * memfds costs the copy alone, and the daemon takes the memfd over as the
 * object's blob.
 *
 * A put that finds no memfd of its size class ready goes the usual way and
 * has one prepared for the next put of that class (see {@link MemfdPool}).
 * Ready memfds are given back after {@link POOL_IDLE_MS} without a large put.
 */
export class WriteAhead {
  readonly #native: Native;
  readonly #tasks = new Tasks();
  readonly #pool: MemfdPool;

  /**
   * @param native The native library.
   * @param maxBytes The most bytes of memfds to keep ready.
   */
  constructor(native: Native, maxBytes: number) {
    this.#native = native;
    this.#pool = new MemfdPool(native, maxBytes, () => maxBytes, this.#tasks, POOL_IDLE_MS);
  }

  /**
   * A ready memfd for an object of `size` bytes, cut to that size.
   *
   * @param size The object's size.
   * @returns The memfd and its read-write mapping, to fill (see
   * {@link WriteAhead.copy}); undefined when none was ready. Either way, call
   * {@link WriteAhead.done} once the put is over.
   */
  take(size: number): PreparedMemfd | undefined {
    const memfd = this.#pool.takeReady(size);
    if (memfd === undefined || memfd.capacity === size) return memfd;
    const cut = this.#native.symbols.pk_ftruncate(memfd.fd, BigInt(size));
    if (cut < 0) this.#pool.release(memfd);
    check(cut, "ftruncate");
    return memfd;
  }

  /**
   * Copies `chunks` into a memfd from {@link WriteAhead.take}.
   *
   * @param memfd The memfd.
   * @param chunks The bytes, at most its size.
   */
  copy(memfd: PreparedMemfd, chunks: readonly Uint8Array[]): void {
    const { symbols } = this.#native;
    let at = 0;
    for (const chunk of chunks) {
      symbols.pk_copy_in(Deno.UnsafePointer.offset(memfd.pointer, at), chunk, BigInt(chunk.length));
      at += chunk.length;
    }
  }

  /**
   * Unmaps a filled memfd's mapping on another thread once the caller has
   * gone on, in steps that each hold the address-space lock briefly: the
   * daemon can seal the memfd for good only once no writable mapping of it
   * is left.
   *
   * @param pointer The mapping.
   * @param length Its length.
   */
  unmap(pointer: Deno.PointerObject, length: number): void {
    const { symbols } = this.#native;
    this.#tasks.track(
      "Unmapping a filled memfd",
      this.#later()
        .then(() => symbols.pk_munmap_nb(pointer, BigInt(length)))
        .then((result) => check(result, "munmap")),
    );
  }

  /**
   * Resolves once the caller has gone on: starting a call on another thread
   * stalls this one for a while, and unmapping competes for the CPU.
   */
  #later(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  /**
   * Ends a put of `size` bytes: unmaps and closes the memfd it filled, if
   * any, on another thread and in steps that each hold the address-space
   * lock briefly (the daemon can seal the memfd for good only once no
   * writable mapping of it is left), and has the next memfd of its size
   * class prepared. Both cost more than the copy, so they start once the caller has
   * gone on with the put's answer, instead of competing with it for the CPU.
   *
   * @param size The put's size.
   * @param memfd What {@link WriteAhead.take} gave, if anything.
   */
  done(size: number, memfd?: PreparedMemfd): void {
    const later = this.#later();
    if (memfd !== undefined) {
      const { symbols } = this.#native;
      this.#tasks.track(
        "Unmapping a filled memfd",
        later
          .then(() => symbols.pk_unmap_close_nb(memfd.fd, memfd.pointer, BigInt(memfd.capacity)))
          .then((result) => check(result, "munmap and close")),
      );
    }
    this.#tasks.track("Preparing a memfd", later.then(() => this.#pool.supply(size)));
  }

  /** Gives back every ready memfd and waits for work on other threads. */
  async close(): Promise<void> {
    this.#pool.close();
    await this.#tasks.drain();
  }
}
