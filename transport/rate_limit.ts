/**
 * Byte-rate limits and a bound on concurrent work, shared by the HTTP
 * server (uploads to other daemons) and the cluster's transfers (downloads),
 * so that one hot object cannot starve a host and so that a loopback
 * benchmark behaves like a network of real links.
 *
 * @module
 */

/** Milliseconds now; monotonic by default, a test's own clock otherwise. */
export type RateClock = () => number;

/**
 * What paces bytes: `rate` bytes a second, each taker waiting its turn. A
 * {@link TokenBucket}, or one that native code takes from too (the upload
 * bucket of the native GET listener).
 */
export interface ByteBucket {
  /** Bytes a second. */
  readonly rate: number;
  /** Bytes taken so far. */
  readonly taken: number;
  /** Waits until `bytes` may pass; `signal` ends the wait early (the bytes stay taken). */
  take(bytes: number, signal?: AbortSignal): Promise<void>;
}

/**
 * A token bucket of bytes: `rate` bytes a second, bursts of at most `burst`.
 * A take larger than what is there runs the bucket into debt and waits it
 * out, so takers of any size get their turn in order and the long-run rate is
 * exact.
 *
 * A wait that ends late (a loaded machine ran the timer, or the process,
 * late) is made up: the bytes the taker could have had since the wait's end
 * are kept for it, beyond `burst`, up to `catchUp` bytes. So a limit means a
 * long-run average equal to it whenever the link and the CPU allow, and a
 * daemon starved for a while catches up rather than losing that time for
 * good. The same goes for a short stall right after a wait: a take that
 * comes at most {@link BRIDGE_MS} after the bucket's debt was paid off keeps
 * all the bytes of that gap, as a transfer under way spent it on its own work
 * (reading the next chunk, a busy event loop), not idle. What bounds the
 * bursts: after idle time (no take within {@link BRIDGE_MS} of the last
 * debt's end, or no debt at all), `burst` (50 ms of the rate); after a gap
 * that short, the bytes of the gap, which the bucket would have let through
 * in it; after a late wake-up, the bytes of that lateness, at most `catchUp`
 * (1 s of the rate). Only lateness in a wait the bucket imposed, or a gap
 * right after one, counts: a taker that was not waiting may have had nothing
 * to send.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "@packice/packice";
 * const bucket = new TokenBucket(200e6); // 200 MB/s
 * await bucket.take(1 << 20);
 * ```
 */
export class TokenBucket implements ByteBucket {
  /** Bytes a second. */
  readonly rate: number;
  readonly #burst: number;
  readonly #catchUp: number;
  readonly #clock: RateClock;
  #tokens: number;
  // The most tokens the bucket holds: `burst`, raised by late wake-ups until spent.
  #cap: number;
  #at: number;
  #taken = 0;

  /**
   * Creates a full bucket.
   *
   * @param rate Bytes a second, more than 0.
   * @param burst Bytes taken at once without waiting. Default: {@link burstOf} `rate`.
   * @param clock The time source. Default `performance.now`.
   * @param catchUp The most bytes kept for takers whose waits ended late.
   *   Default: {@link catchUpOf} `rate`, and never less than `burst`.
   * @throws {RangeError} For a rate, burst or catch-up that is not a positive number.
   */
  constructor(
    rate: number,
    burst?: number,
    clock: RateClock = () => performance.now(),
    catchUp?: number,
  ) {
    if (!(rate > 0) || !Number.isFinite(rate)) {
      throw new RangeError(`Cannot limit to ${rate} bytes/s: not a positive rate`);
    }
    const size = burst ?? burstOf(rate);
    if (!(size > 0)) throw new RangeError(`Cannot allow bursts of ${burst} bytes`);
    const most = catchUp ?? catchUpOf(rate);
    if (!(most > 0)) throw new RangeError(`Cannot catch up ${catchUp} bytes`);
    this.rate = rate;
    this.#burst = size;
    this.#catchUp = Math.max(size, most);
    this.#clock = clock;
    this.#tokens = size;
    this.#cap = size;
    this.#at = clock();
  }

  /** Bytes taken so far. */
  get taken(): number {
    return this.#taken;
  }

  /**
   * Milliseconds to wait before `bytes` may pass; the bytes are taken now.
   * Callers that cannot wait (tests) use this, and {@link TokenBucket.overslept}
   * when they come back late; others {@link TokenBucket.take}.
   */
  reserve(bytes: number): number {
    const now = this.#clock();
    const refilled = this.#tokens + (now - this.#at) * this.rate / 1000;
    // In debt at the last take, so `refilled` is what the time since the debt's end
    // brought: kept whole when that gap is short enough to be the taker's own work.
    const bridged = this.#tokens < 0 && refilled <= BRIDGE_MS * this.rate / 1000;
    this.#tokens = Math.min(bridged ? this.#catchUp : this.#cap, refilled);
    // What late wake-ups kept and is not spent yet stays; nothing more piles up.
    this.#cap = Math.max(this.#burst, this.#tokens);
    this.#at = now;
    this.#tokens -= bytes;
    this.#taken += bytes;
    return this.#tokens >= 0 ? 0 : -this.#tokens * 1000 / this.rate;
  }

  /**
   * A taker came back `ms` after the end of the wait {@link TokenBucket.reserve}
   * gave it: the bytes of that time are kept for it, up to the catch-up. Late
   * takers at once were late together (one stalled process): the most late
   * counts, not their sum.
   */
  overslept(ms: number): void {
    if (!(ms > 0)) return;
    const kept = this.#burst + ms * this.rate / 1000;
    this.#cap = Math.min(this.#catchUp, Math.max(this.#cap, kept));
  }

  /** Waits until `bytes` may pass; `signal` ends the wait early (the bytes stay taken). */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const wait = this.reserve(bytes);
    if (wait > 0) await waitOut(wait, (late) => this.overslept(late), signal, this.#clock);
  }
}

/**
 * At most `limit` holders at once; others wait in order for a slot.
 *
 * @example
 * ```ts
 * import { Slots } from "@packice/packice";
 * const slots = new Slots(4);
 * const release = await slots.acquire();
 * release();
 * ```
 */
export class Slots {
  readonly #limit: number;
  readonly #waiting: Array<() => void> = [];
  #used = 0;

  /**
   * Creates free slots.
   *
   * @param limit Holders at once, 1 or more.
   * @throws {RangeError} For a limit that is not a positive integer.
   */
  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`Cannot allow ${limit} at once: not a positive integer`);
    }
    this.#limit = limit;
  }

  /** Holders at once. */
  get limit(): number {
    return this.#limit;
  }

  /** Slots in use. */
  get used(): number {
    return this.#used;
  }

  /** Waiters in line. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * A slot now, or once one frees if fewer than `line` wait before this one;
   * undefined at once when the line is that long, or when `signal` aborts
   * the wait. The returned function frees the slot.
   */
  async acquireWithin(line: number, signal?: AbortSignal): Promise<(() => void) | undefined> {
    if (this.#used < this.#limit && this.#waiting.length === 0) {
      this.#used++;
      return this.#freer();
    }
    if (this.#waiting.length >= line || signal?.aborted) return undefined;
    const handed = await new Promise<boolean>((resolve) => {
      const wake = () => {
        signal?.removeEventListener("abort", leave);
        resolve(true);
      };
      const leave = () => {
        this.#waiting.splice(this.#waiting.indexOf(wake), 1);
        resolve(false);
      };
      this.#waiting.push(wake);
      signal?.addEventListener("abort", leave, { once: true });
    });
    return handed ? this.#freer() : undefined;
  }

  /** A slot if one is free now, else undefined; the returned function frees it. */
  tryAcquire(): (() => void) | undefined {
    if (this.#used >= this.#limit || this.#waiting.length > 0) return undefined;
    this.#used++;
    return this.#freer();
  }

  /** Waits for a slot; the returned function frees it (once; later calls do nothing). */
  async acquire(): Promise<() => void> {
    if (this.#used < this.#limit) this.#used++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    return this.#freer();
  }

  #freer(): () => void {
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const next = this.#waiting.shift();
      if (next === undefined) this.#used--;
      else next();
    };
  }
}

/**
 * The longest gap, in ms, between the end of a bucket's debt (the wait it
 * imposed) and the next take that still counts as the same transfer under
 * way: the bytes of that gap are kept for it, where idle time refills the
 * burst only. Long enough for the stalls of a loaded daemon (a busy event
 * loop, a late read), short enough that a link idle for longer starts from
 * the burst. The native bucket (`pk_tb_new`) is given the same.
 */
export const BRIDGE_MS = 250;

/**
 * The burst of a bucket of `rate` bytes a second when none is given: 50 ms
 * of it, at least 64 KiB. What passes at once after idle time.
 */
export function burstOf(rate: number): number {
  return Math.max(64 << 10, rate / 20);
}

/**
 * The most bytes a bucket of `rate` bytes a second keeps for takers whose
 * waits ended late, when none is given: 1 s of it (what Uber Kraken allows
 * as a whole burst), at least {@link burstOf} it. A stall up to that long
 * is made up in full; the rest of a longer one is lost, so that a stall
 * never turns into a burst of more than a second's bytes.
 */
export function catchUpOf(rate: number): number {
  return Math.max(burstOf(rate), rate);
}

/**
 * Waits `ms` (a bucket's wait), or until `signal` aborts; a wait that ended
 * later than asked tells `late` by how many ms of `clock`.
 */
export async function waitOut(
  ms: number,
  late: (ms: number) => void,
  signal?: AbortSignal,
  clock: RateClock = () => performance.now(),
): Promise<void> {
  const due = clock() + ms;
  await sleep(ms, signal);
  if (signal?.aborted !== true) late(clock() - due);
}

/** Waits `ms`, or until `signal` aborts; the timer never outlives the wait. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * Bytes sent in one slice at `rate` bytes a second: about 5 ms of it, at
 * least 64 KiB and at most 1 MiB. Each slice costs a wake-up and a write;
 * smaller slices only add to them, as the bucket lets bursts of 50 ms through.
 */
export function sliceOf(rate: number): number {
  return Math.min(1 << 20, Math.max(64 << 10, Math.floor(rate / 200)));
}

/**
 * A stream of the same bytes as `body`, at most `bucket.rate` bytes a second:
 * chunks larger than a slice are cut, so a 4 MiB zero-copy view does not pass
 * in one burst.
 */
export function limitStream(
  body: ReadableStream<Uint8Array>,
  bucket: ByteBucket,
  slice: number = sliceOf(bucket.rate),
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let rest: Uint8Array | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (rest === undefined || rest.length === 0) {
        const next = await reader.read();
        if (next.done) return controller.close();
        rest = next.value;
      }
      const chunk = rest.subarray(0, slice);
      rest = rest.subarray(chunk.length);
      await bucket.take(chunk.length);
      controller.enqueue(chunk);
    },
    async cancel(reason) {
      await reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * A stream of `source.bytes` in slices, at most `bucket.rate` bytes a
 * second when there is a bucket. `source.bytes` is read afresh for each
 * slice: its owner may swap it for a copy of the same bytes meanwhile (see
 * `LentRange`).
 */
export function paced(
  source: { readonly bytes: Uint8Array },
  bucket?: ByteBucket,
): ReadableStream<Uint8Array> {
  const slice = bucket === undefined ? 1 << 20 : sliceOf(bucket.rate);
  let at = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const length = Math.min(slice, source.bytes.length - at);
      if (length <= 0) return controller.close();
      await bucket?.take(length);
      controller.enqueue(source.bytes.subarray(at, at + length));
      at += length;
    },
  }, { highWaterMark: 0 });
}
