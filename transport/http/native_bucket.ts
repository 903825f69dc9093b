/**
 * The upload token bucket of an HTTP server with a native GET listener
 * (`--http-fast` with `--max-upload-rate`): one bucket in C that the
 * listener's sendfile bodies and the Deno server's streamed bodies take
 * from alike, so that the daemon's uploads together keep to one rate.
 *
 * @module
 */
import { check } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import { BRIDGE_MS, burstOf, type ByteBucket, catchUpOf, waitOut } from "../rate_limit.ts";

/** A token bucket of bytes kept in the native library; see `TokenBucket` for its rules. */
export class NativeBucket implements ByteBucket {
  /** Bytes a second. */
  readonly rate: number;
  readonly #native: Native;
  #handle: Deno.PointerValue;

  /**
   * Creates a full bucket of `rate` bytes a second, bursts of `burstOf` it,
   * late wake-ups made up to `catchUpOf` it, gaps after a debt of up to
   * `BRIDGE_MS` kept whole.
   *
   * @throws {RangeError} For a rate that is not a positive number.
   */
  constructor(native: Native, rate: number) {
    if (!(rate > 0) || !Number.isFinite(rate)) {
      throw new RangeError(`Cannot limit to ${rate} bytes/s: not a positive rate`);
    }
    const out = new BigUint64Array(1);
    check(
      native.symbols.pk_tb_new(rate, burstOf(rate), catchUpOf(rate), BRIDGE_MS, out),
      "create a token bucket",
    );
    this.rate = rate;
    this.#native = native;
    this.#handle = Deno.UnsafePointer.create(out[0]!);
  }

  /** The bucket for the native GET listener; null once freed. */
  get pointer(): Deno.PointerValue {
    return this.#handle;
  }

  /** Bytes taken so far, by this process's JS and the listener; 0 once freed. */
  get taken(): number {
    return this.#handle === null ? 0 : this.#native.symbols.pk_tb_taken(this.#handle);
  }

  /** Waits until `bytes` may pass; `signal` ends the wait early (the bytes stay taken). */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.#handle === null) return;
    const wait = this.#native.symbols.pk_tb_reserve(this.#handle, bytes);
    if (wait > 0) await waitOut(wait, (late) => this.#overslept(late), signal);
  }

  #overslept(ms: number): void {
    // Freed while waiting: nothing to make up.
    if (this.#handle !== null) this.#native.symbols.pk_tb_overslept(this.#handle, ms);
  }

  /** Frees it; call once no listener uses it. Later takes wait for nothing. Idempotent. */
  free(): void {
    if (this.#handle === null) return;
    const handle = this.#handle;
    this.#handle = null;
    this.#native.symbols.pk_tb_free(handle);
  }
}
