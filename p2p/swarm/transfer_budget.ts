/**
 * The bytes a daemon's transfers may hold at once: each fetch reserves its
 * object's size before its CREATE blob exists, and gives it back when the
 * copy is sealed or dropped. A full budget makes a fetch wait, for a bounded
 * time, then refuse with `CapacityExceededError`: memory for transfers never
 * grows past the budget, whatever number of objects is asked for. An
 * endgame's scratch piece takes its bytes from the same budget, without
 * waiting: when there is no room, the straggler is simply not duplicated.
 *
 * @module
 */
import { CapacityExceededError } from "../../core/errors.ts";

/** A reservation; `release` gives its bytes back (once). */
export interface Reservation {
  /** Gives the bytes back; later calls do nothing. */
  release(): void;
}

/** Bytes reserved by transfers, at most `limit`. */
export class TransferBudget {
  /** The budget in bytes. */
  readonly limit: number;
  readonly #waitMs: number;
  readonly #waiting: Array<{ bytes: number; resolve: () => void }> = [];
  #used = 0;

  /**
   * Creates an empty budget.
   *
   * @param limit Bytes, 1 or more.
   * @param waitMs How long a reservation waits for room before it is refused. Default 30 000.
   * @throws {RangeError} For a limit that is not a positive integer.
   */
  constructor(limit: number, waitMs = 30_000) {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`Cannot budget ${limit} bytes: not a positive integer`);
    }
    this.limit = limit;
    this.#waitMs = waitMs;
  }

  /** Bytes reserved now. */
  get used(): number {
    return this.#used;
  }

  /**
   * Reserves `bytes`, waiting in line for room.
   *
   * @throws {CapacityExceededError} When `bytes` exceeds the whole budget, or no
   *   room came within the wait, or `signal` aborted the wait.
   */
  async reserve(bytes: number, what: string, signal?: AbortSignal): Promise<Reservation> {
    if (bytes > this.limit) {
      throw new CapacityExceededError(
        `Cannot fetch ${what}: its ${bytes} bytes exceed the transfer budget of ${this.limit} (raise --transfer-budget)`,
      );
    }
    if (this.#waiting.length > 0 || this.#used + bytes > this.limit) {
      await this.#wait(bytes, what, signal);
    } else {
      this.#used += bytes;
    }
    return this.#held(bytes);
  }

  /**
   * Reserves `bytes` if they fit now and no one waits: never waits, never
   * jumps the line.
   *
   * @returns Undefined when there is no room.
   */
  tryReserve(bytes: number): Reservation | undefined {
    if (this.#waiting.length > 0 || this.#used + bytes > this.limit) return undefined;
    this.#used += bytes;
    return this.#held(bytes);
  }

  #held(bytes: number): Reservation {
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.#used -= bytes;
        this.#admit();
      },
    };
  }

  #wait(bytes: number, what: string, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const entry = {
        bytes,
        resolve: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", give);
          resolve();
        },
      };
      const give = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", give);
        this.#waiting.splice(this.#waiting.indexOf(entry), 1);
        this.#admit();
        reject(
          new CapacityExceededError(
            `Cannot fetch ${what}: the transfer budget of ${this.limit} bytes stayed full for ${this.#waitMs} ms (${this.#used} in use)`,
          ),
        );
      };
      const timer = setTimeout(give, this.#waitMs);
      signal?.addEventListener("abort", give, { once: true });
      this.#waiting.push(entry);
    });
  }

  /** Lets in waiters in order while they fit. */
  #admit(): void {
    while (this.#waiting.length > 0 && this.#used + this.#waiting[0]!.bytes <= this.limit) {
      const next = this.#waiting.shift()!;
      this.#used += next.bytes;
      next.resolve();
    }
  }
}
