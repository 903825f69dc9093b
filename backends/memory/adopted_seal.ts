import { check, Errno, errnoError } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import { FULL_SEALS } from "./seals.ts";

/**
 * How long the writer has to unmap, in milliseconds, before the bytes are
 * copied: its client unmaps on another thread as soon as it has sent the
 * memfd, which takes milliseconds for a large one.
 */
const UNMAP_GRACE_MS = 1000;
/** The pauses between tries of `F_SEAL_WRITE` start at 1 ms and double up to this. */
const MAX_PAUSE_MS = 64;

/**
 * Adds every seal to a memfd that a writer in another process filled through
 * its own read-write mapping, once that mapping is gone: `F_SEAL_WRITE`
 * fails with EBUSY while it is not. It tries again after pauses that grow,
 * and at once and soon after when {@link AdoptedSeal.poke}d by a reader. If the writer still maps the memfd
 * after about a second, or has added `F_SEAL_SEAL` itself, the bytes are
 * copied into a new memfd, sealed at once, so that a writer that keeps its
 * mapping can change nothing anyone reads.
 */
export class AdoptedSeal {
  /** The memfd that holds the sealed bytes: the one given, or the copy, which the caller then owns. */
  readonly done: Promise<number>;
  readonly #native: Native;
  readonly #fd: number;
  readonly #size: number;
  #stopped = false;
  #pause = 1;
  #wake: (() => void) | undefined;

  /**
   * Starts sealing.
   *
   * @param native The native library.
   * @param fd The memfd, with the size seals added, and `F_SEAL_FUTURE_WRITE` unless its writer
   * forbade more seals.
   * @param size Its size in bytes.
   */
  constructor(native: Native, fd: number, size: number) {
    this.#native = native;
    this.#fd = fd;
    this.#size = size;
    this.done = this.#run();
  }

  /** Tries again now, and soon after: a reader is waiting. */
  poke(): void {
    this.#pause = 1;
    this.#wake?.();
  }

  /** Stops trying, as the blob is freed; {@link AdoptedSeal.done} gives the memfd given. */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  async #run(): Promise<number> {
    const { symbols } = this.#native;
    const deadline = performance.now() + UNMAP_GRACE_MS;
    while (performance.now() < deadline) {
      const pause = this.#pause;
      this.#pause = Math.min(pause * 2, MAX_PAUSE_MS);
      await this.#sleep(pause);
      if (this.#stopped) return this.#fd;
      const result = symbols.pk_add_seals(this.#fd, FULL_SEALS);
      if (result === 0) return this.#fd;
      // EPERM: the writer has forbidden more seals, so only a copy can be sealed.
      if (result !== -Errno.EBUSY) break;
    }
    return await this.#sealedCopy();
  }

  async #sealedCopy(): Promise<number> {
    const { symbols } = this.#native;
    const copy = new Int32Array(1);
    check(symbols.pk_memfd_prepare(BigInt(this.#size), 0, copy, null), "memfd prepare");
    try {
      const copied = await symbols.pk_copy_file_range_all_nb(
        this.#fd,
        0n,
        copy[0]!,
        0n,
        BigInt(this.#size),
      );
      check(copied, "copy_file_range");
      if (Number(copied) !== this.#size) throw errnoError(Errno.EIO, "copy_file_range: short copy");
      check(symbols.pk_add_seals(copy[0]!, FULL_SEALS), "fcntl(F_ADD_SEALS)");
    } catch (error) {
      symbols.pk_close(copy[0]!);
      throw error;
    }
    return copy[0]!;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#wake?.(), ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      if (this.#stopped) this.#wake();
    });
  }
}
