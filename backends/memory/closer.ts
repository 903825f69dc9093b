import { check, Errno, errnoError } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import type { Tasks } from "../../native/tasks.ts";

/** How many descriptors one call closes. */
const BATCH = 256;

/**
 * Closes file descriptors in batches on another thread. Closing the last
 * descriptor of a memfd gives its pages back to the kernel, microseconds
 * the JS thread need not spend. A batch goes when it is full or at the next
 * macrotask.
 */
export class FdCloser {
  readonly #native: Native;
  readonly #tasks: Tasks;
  #pending: number[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Creates a closer with nothing pending.
   *
   * @param native The native library.
   * @param tasks Where the closing calls are tracked.
   */
  constructor(native: Native, tasks: Tasks) {
    this.#native = native;
    this.#tasks = tasks;
  }

  /** Closes `fd` soon; it must not be used again. */
  close(fd: number): void {
    this.#pending.push(fd);
    if (this.#pending.length >= BATCH) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), 0);
  }

  /**
   * Starts closing every pending descriptor now.
   *
   * @throws {CapacityExceededError} When there is no memory for the list; the
   *   descriptors stay pending.
   */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return;
    const count = this.#pending.length;
    // Memory the library owns: the runtime's teardown at exit cannot free it
    // under the closing thread.
    const memory = this.#native.symbols.pk_alloc(BigInt(count * 4));
    if (memory === null) throw errnoError(Errno.ENOMEM, "allocating descriptors to close");
    const fds = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(memory, count * 4));
    fds.set(this.#pending);
    this.#pending = [];
    this.#tasks.track(
      "Closing memfds",
      this.#native.symbols.pk_close_many_nb(memory, count).then((result) => {
        fds.buffer.transfer(0);
        this.#native.symbols.pk_free(memory);
        check(result, "close");
      }),
    );
  }
}
