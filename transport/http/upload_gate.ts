/**
 * What stands between an object GET and its bytes going out: the upload
 * rate limit, the upload slots, the guard against sending one range to
 * daemons twice in a row, and the ranges of objects still arriving that a
 * partial holder relays.
 *
 * @module
 */
import { StoreUnavailableError } from "../../core/errors.ts";
import { type ByteBucket, limitStream, paced, Slots, TokenBucket } from "../rate_limit.ts";
import { parseRange } from "./conditional.ts";
import { HttpStatusError } from "./errors.ts";
import { RepeatGuard } from "./repeat_guard.ts";

/** An object on its way to a peer, whose verified ranges it serves. */
export interface PartialObject {
  /** The object's size. */
  readonly size: number;
  /** A copy of the range when all of it is verified, else undefined. */
  read(start: number, end: number): Uint8Array | undefined;
  /**
   * Optional: the range itself, not a copy, lent to one response, when all
   * of it is verified; else undefined.
   */
  lend?(start: number, end: number): LentRange | undefined;
  /**
   * Optional: the memfd the object lands in, whose verified ranges (those
   * `lend` lends) a native listener may send by fd; their bytes stay as they
   * are until the loan is given back.
   */
  readonly fd?: number;
}

/**
 * Bytes of an object's memory lent to one response, which gives them back
 * when it ends. The lender may take its memory back sooner: `bytes` is
 * then a copy, so the response reads `bytes` afresh for each chunk.
 */
export interface LentRange {
  /** The bytes: the lender's memory, or a copy once it took its memory back. */
  readonly bytes: Uint8Array;
  /** Gives the bytes back; later calls do nothing. */
  done(): void;
}

/** A peer that relays objects it is still receiving (the cluster peer). */
export interface PartialHolder {
  /** The object `id` on its way here, if it is. */
  partial?(id: string): PartialObject | undefined;
  /**
   * Optional: hands each object that lands in a memfd from now on to `sink`
   * (undefined: to none), which serves its verified pieces itself.
   */
  relayTo?(sink: RelaySink | undefined): void;
}

/**
 * What serves the verified pieces of objects still arriving off the JS
 * thread (the native GET listener): another daemon's range inside them is
 * answered there, any other request still here.
 */
export interface RelaySink {
  /**
   * Serves the pieces of `id`, landing in the memfd `fd` of `size` bytes in
   * pieces of `pieceSize`, as each is reported verified; undefined when it
   * cannot (they are served here then).
   */
  relay(id: string, fd: number, size: number, pieceSize: number): RelayedPieces | undefined;
}

/** An object whose verified pieces a {@link RelaySink} serves. */
export interface RelayedPieces {
  /** Piece `piece` verified: its bytes stay as they are from now on. */
  verified(piece: number): void;
  /** Stops serving it (sealed, failed or aborted); answers under way finish. Idempotent. */
  end(): void;
}

/** Limits of object bodies sent; see `HttpServerOptions`. */
export interface UploadLimits {
  readonly maxUploadRate?: number | undefined;
  readonly maxUploads?: number | undefined;
  readonly repeatWindowMs?: number | undefined;
}

/** The upload limits of one HTTP server. */
export class UploadGate {
  readonly #rate: ByteBucket | undefined;
  readonly #slots: Slots | undefined;
  readonly #repeats: RepeatGuard;
  /** Relay bodies under way that hold no slot here (the native listener's). */
  #elsewhere: () => number = () => 0;

  /**
   * Creates the gate of `limits`.
   *
   * @param bucket The upload bucket, when bodies sent elsewhere take from it too
   *   (the native GET listener's); default a `TokenBucket` of `maxUploadRate`.
   */
  constructor(limits: UploadLimits, bucket?: ByteBucket) {
    this.#rate = limits.maxUploadRate === undefined
      ? undefined
      : bucket ?? new TokenBucket(limits.maxUploadRate);
    this.#slots = limits.maxUploads === undefined ? undefined : new Slots(limits.maxUploads);
    this.#repeats = new RepeatGuard(limits.repeatWindowMs ?? 0);
  }

  /**
   * An upload slot, before any lease is taken. A client waits in line. So
   * does another daemon (`local`), for at most {@link LINE_WAIT_MS}: its
   * request is then there when a slot frees, so the slot never idles for a
   * round trip, and the asker makes no request again and again for
   * nothing. The line is short: {@link LINE_PER_SLOT} waiters a slot at a
   * holder of the sealed object, whom every receiver of a broadcast asks
   * once at a time; one a slot at a relay, as what it has is soon at other
   * relays too (a longer line there held the last pieces of a broadcast
   * up). Beyond the line a daemon is told to come back (503), as it can try
   * another source meanwhile. At a holder of the sealed object, a range
   * being sent, or just sent, to a daemon is refused before it waits (see
   * `repeat_guard.ts`); a relay sends the piece it just got to every daemon
   * that asks, as refusing would only idle its slot.
   *
   * @param asked Who asks (`local`: another daemon), the range asked, and
   *   whether this daemon relays the object (it is on its way here).
   * @param signal Aborts the wait: the asker went away.
   * @returns What to call when the body is out, or with false when it is
   *   refused after all, when anything is to be freed.
   * @throws {HttpStatusError} 503 to a daemon when the line is full, or the range was just sent.
   */
  async enter(
    id: string,
    asked: { readonly local: boolean; readonly range: string | null; readonly relay: boolean },
    signal?: AbortSignal,
  ): Promise<((sent?: boolean) => void) | undefined> {
    if (!asked.local) return await this.#slots?.acquire();
    const { range, relay } = asked;
    const sent = range === null || relay ? undefined : this.#repeats.admit(`${id} ${range}`);
    if (range !== null && !relay && sent === undefined) {
      throw busy(`Busy: range ${range} of ${id} is being or was just sent; retry shortly`);
    }
    if (this.#slots === undefined) return sent;
    // Slots a relay's listener fills itself are not waited for (their end
    // wakes no one here): the asker tries elsewhere meanwhile.
    const elsewhere = relay ? this.#elsewhere() : 0;
    if (elsewhere > 0 && this.#slots.used + elsewhere >= this.#slots.limit) {
      throw busy(`Busy: ${this.#slots.used + elsewhere} uploads at once; retry shortly`);
    }
    const line = () => AbortSignal.timeout(LINE_WAIT_MS);
    const free = this.#slots.tryAcquire() ?? await this.#slots.acquireWithin(
      (relay ? 1 : LINE_PER_SLOT) * this.#slots.limit,
      signal === undefined ? line() : AbortSignal.any([signal, line()]),
    );
    if (free === undefined) {
      sent?.(false);
      throw busy(
        `Busy: ${this.#slots.used} uploads at once and ${this.#slots.waiting} waiting; retry shortly`,
      );
    }
    return (out = true) => {
      sent?.(out);
      free();
    };
  }

  /**
   * Counts relay bodies sent elsewhere (the native GET listener's ranges of
   * objects still arriving, which it admits itself) against the upload
   * slots when a relay's range is asked here.
   */
  sendingElsewhere(count: () => number): void {
    this.#elsewhere = count;
  }

  /**
   * Bytes of object bodies sent under the upload rate so far (taken from
   * its bucket, by the native listener too); undefined without a rate.
   */
  get sent(): number | undefined {
    return this.#rate?.taken;
  }

  /** `bytes` as a body sent at the upload rate. */
  pace(bytes: Uint8Array<ArrayBuffer>): BodyInit {
    return this.#rate === undefined ? bytes : paced({ bytes }, this.#rate);
  }

  /** `stream` at the upload rate. */
  limit(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    return this.#rate === undefined ? stream : limitStream(stream, this.#rate);
  }

  /**
   * A range of an object still on its way to this daemon, from the pieces
   * it has verified (a partial holder relaying them): sent from the
   * object's own memory when the partial lends it, until `completed`.
   *
   * @throws {StoreUnavailableError} 503 for a range it does not have yet, so the
   *   asker tries elsewhere without withdrawing it.
   */
  partialRange(
    request: Request,
    id: string,
    partial: PartialObject,
    completed: Promise<void>,
  ): Response {
    const range = parseRange(request.headers.get("range"), partial.size);
    const lent = range === undefined ? undefined : partial.lend?.(range.start, range.end);
    const bytes = lent?.bytes ??
      (range === undefined ? undefined : partial.read(range.start, range.end));
    if (range === undefined || bytes === undefined) throw notInYet(id);
    if (lent !== undefined) completed.then(lent.done, lent.done);
    const headers = {
      "content-type": "application/octet-stream",
      "content-length": String(bytes.length),
      "content-range": `bytes ${range.start}-${range.end - 1}/${partial.size}`,
    };
    // A copy is the body as it is: a Blob would copy it twice more.
    if (this.#rate === undefined && lent === undefined) {
      return new Response(bytes as Uint8Array<ArrayBuffer>, { status: 206, headers });
    }
    return new Response(paced(lent ?? { bytes }, this.#rate), { status: 206, headers });
  }
}

/**
 * The refusal of a range of object `id`, on its way to this daemon, that
 * touches a piece not verified yet (503): the asker tries elsewhere without
 * withdrawing it. The native GET listener answers with it too.
 */
export function notInYet(id: string): StoreUnavailableError {
  return new StoreUnavailableError(
    `Cannot read object ${id} yet: on its way here, the range asked is not in`,
  );
}

/**
 * Daemons' requests that may wait in line for an upload slot, per slot: a
 * whole holder in a broadcast gets one request from each receiver at a time.
 */
const LINE_PER_SLOT = 4;

/**
 * The longest another daemon's request waits in line for an upload slot:
 * much less than its piece timeout (4 s + 4 s per MiB).
 */
const LINE_WAIT_MS = 5000;

function busy(message: string): HttpStatusError {
  return new HttpStatusError(503, new StoreUnavailableError(message), { "retry-after": "1" });
}
