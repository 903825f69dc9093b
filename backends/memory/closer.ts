import { check } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import type { Tasks } from "./tasks.ts";

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

  /** Starts closing every pending descriptor now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return;
    const fds = Int32Array.from(this.#pending);
    this.#pending = [];
    this.#tasks.track(
      "Closing memfds",
      this.#native.symbols.pk_close_many_nb(fds, fds.length).then((result) =>
        check(result, "close")
      ),
    );
  }
}
