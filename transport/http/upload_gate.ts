/**
 * What stands between an object GET and its bytes going out: the upload
 * rate limit, the upload slots, the guard against sending one range to
 * daemons twice in a row, and the ranges of objects still arriving that a
 * partial holder relays.
 *
 * @module
 */
import { StoreUnavailableError } from "../../core/errors.ts";
import { limitStream, Slots, TokenBucket } from "../rate_limit.ts";
import { parseRange } from "./conditional.ts";
import { HttpStatusError } from "./errors.ts";
import { RepeatGuard } from "./repeat_guard.ts";

/** An object on its way to a peer, whose verified ranges it serves. */
export interface Partial {
  /** The object's size. */
  readonly size: number;
  /** A copy of the range when all of it is verified, else undefined. */
  read(start: number, end: number): Uint8Array | undefined;
}

/** A peer that relays objects it is still receiving (the cluster peer). */
export interface PartialHolder {
  /** The object `id` on its way here, if it is. */
  partial?(id: string): Partial | undefined;
}

/** Limits of object bodies sent; see `HttpServerOptions`. */
export interface UploadLimits {
  readonly maxUploadRate?: number | undefined;
  readonly maxUploads?: number | undefined;
  readonly repeatWindowMs?: number | undefined;
}

/** The upload limits of one HTTP server. */
export class UploadGate {
  readonly #rate: TokenBucket | undefined;
  readonly #slots: Slots | undefined;
  readonly #repeats: RepeatGuard;

  /** Creates the gate of `limits`. */
  constructor(limits: UploadLimits) {
    this.#rate = limits.maxUploadRate === undefined
      ? undefined
      : new TokenBucket(limits.maxUploadRate);
    this.#slots = limits.maxUploads === undefined ? undefined : new Slots(limits.maxUploads);
    this.#repeats = new RepeatGuard(limits.repeatWindowMs ?? 0);
  }

  /**
   * An upload slot, before any lease is taken: another daemon (`local`) is
   * told to come back (503), as it can ask another source meanwhile; a
   * client waits in line.
   *
   * @returns What to call when the body is out (or refused), when anything is to be freed.
   * @throws {HttpStatusError} 503 to a daemon when no slot is free, or the range was just sent.
   */
  async enter(id: string, local: boolean, range: string | null): Promise<(() => void) | undefined> {
    if (!local) return await this.#slots?.acquire();
    const free = this.#slots?.tryAcquire();
    if (this.#slots !== undefined && free === undefined) {
      throw busy(`Busy: ${this.#slots.used} uploads at once; retry shortly`);
    }
    if (range === null) return free;
    const sent = this.#repeats.admit(`${id} ${range}`);
    if (sent === undefined) {
      free?.();
      throw busy(`Busy: range ${range} of ${id} is being or was just sent; retry shortly`);
    }
    return () => {
      sent();
      free?.();
    };
  }

  /** `stream` at the upload rate. */
  limit(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    return this.#rate === undefined ? stream : limitStream(stream, this.#rate);
  }

  /**
   * A range of an object still on its way to this daemon, from the pieces
   * it has verified (a partial holder relaying them).
   *
   * @throws {StoreUnavailableError} 503 for a range it does not have yet, so the
   *   asker tries elsewhere without withdrawing it.
   */
  partialRange(request: Request, id: string, partial: Partial): Response {
    const range = parseRange(request.headers.get("range"), partial.size);
    const bytes = range === undefined ? undefined : partial.read(range.start, range.end);
    if (range === undefined || bytes === undefined) {
      throw new StoreUnavailableError(
        `Cannot read object ${id} yet: on its way here, the range asked is not in`,
      );
    }
    const headers = {
      "content-type": "application/octet-stream",
      "content-length": String(bytes.length),
      "content-range": `bytes ${range.start}-${range.end - 1}/${partial.size}`,
    };
    // The copy is the body as it is: a Blob would copy it twice more.
    const body = bytes as Uint8Array<ArrayBuffer>;
    if (this.#rate === undefined) return new Response(body, { status: 206, headers });
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(body);
        controller.close();
      },
    });
    return new Response(this.limit(stream), { status: 206, headers });
  }
}

function busy(message: string): HttpStatusError {
  return new HttpStatusError(503, new StoreUnavailableError(message), { "retry-after": "1" });
}
