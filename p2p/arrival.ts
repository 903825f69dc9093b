/**
 * An object on its way to this daemon as a local reader sees it: how much of
 * it, from the start, has arrived and verified, and a stream of those bytes
 * in order that ends at the seal.
 *
 * @module
 */
import type { ObjectInfo } from "../core/object.ts";
import type { Blob } from "../core/blob.ts";
import type { ArrivingTransfer } from "./fetcher.ts";

/** Bytes per chunk of an arriving stream. */
const CHUNK = 1 << 20;

/**
 * What is known of an object on its way here before its blob exists: that
 * it comes, since `since` (epoch ms), and its size when known (its one blob
 * listed then; none before).
 */
export function expectedInfo(id: string, since: number, size?: number): ObjectInfo {
  const blobSizes = size === undefined ? [] : [size];
  return { id, state: "CREATING", size: size ?? 0, blobSizes, meta: {}, createdAt: since };
}

/** The progress of one fetch, fed by its hooks, awaited by its readers. */
export class Arrival {
  /** The fetch: settles once the copy is sealed and announced, or rejects. */
  readonly flight: Promise<void>;
  /** When the fetch began, in epoch ms. */
  readonly since: number = Date.now();
  #size: number | undefined;
  #object: ObjectInfo | undefined;
  #transfer: ArrivingTransfer | undefined;
  #streamed = false;
  #prefix = 0;
  #changed = Promise.withResolvers<void>();

  /** Follows `flight`, the fetch the hooks report on. */
  constructor(flight: Promise<void>) {
    this.flight = flight;
    const pulse = () => this.#pulse();
    flight.then(pulse, pulse);
  }

  /** Its size, once its record was found. */
  get size(): number | undefined {
    return this.#size;
  }

  /** Its record was found: it has `size` bytes. */
  sized(size: number): void {
    this.#size = size;
  }

  /** The object once its transfer began: size, metadata, digest. */
  get object(): ObjectInfo | undefined {
    return this.#object;
  }

  /** Bytes from the start whose pieces are all in and verified. */
  get prefix(): number {
    return this.#prefix;
  }

  /** The transfer into a CREATE of `object` began. */
  started(object: ObjectInfo, transfer: ArrivingTransfer): void {
    this.#object = object;
    this.#transfer = transfer;
    if (this.#streamed) transfer.inOrder();
    this.#pulse();
  }

  /** A local reader streams the object: its pieces are fetched in order from now on. */
  streamed(): void {
    this.#streamed = true;
    this.#transfer?.inOrder();
  }

  /** The transfer under way, once it began. */
  get transfer(): ArrivingTransfer | undefined {
    return this.#transfer;
  }

  /** The verified prefix grew to `bytes`. */
  grew(bytes: number): void {
    this.#prefix = bytes;
    this.#pulse();
  }

  /** Settles at the next change: the transfer began, the prefix grew, or the fetch ended. */
  changed(): Promise<void> {
    return this.#changed.promise;
  }

  #pulse(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers<void>();
  }
}

/** A READ lease on a sealed copy: its bytes, and its end. */
export interface SealedCopy {
  readonly blob: Blob;
  release(): Promise<void>;
}

/**
 * The bytes of `arrival` in order, each chunk as soon as it is verified:
 * from the transfer while it runs, then from the sealed copy (a READ lease
 * from `sealedCopy`, ended with the stream). Closes once the fetch sealed and
 * announced the copy; fails with the fetch's error (a typed one) when it did
 * not, never with unverified bytes.
 */
export function arrivingBody(
  arrival: Arrival,
  sealedCopy: () => Promise<SealedCopy>,
): ReadableStream<Uint8Array> {
  const size = arrival.object!.size;
  let at = 0;
  let failed: { error: unknown } | undefined;
  let sealed: SealedCopy | undefined;
  let ended = false;
  const done = async () => {
    ended = true;
    const lease = sealed;
    sealed = undefined;
    await lease?.release();
  };
  const next = async (controller: ReadableStreamDefaultController<Uint8Array>) => {
    while (!ended) {
      if (failed !== undefined) throw failed.error;
      if (sealed !== undefined) {
        if (at >= size) {
          await done();
          controller.close();
          return;
        }
        const length = Math.min(CHUNK, size - at);
        controller.enqueue(await sealed.blob.read(at, length));
        at += length;
        return;
      }
      const end = Math.min(arrival.prefix, at + CHUNK);
      const bytes = end > at ? arrival.transfer?.read(at, end) : undefined;
      if (bytes !== undefined) {
        controller.enqueue(bytes);
        at = end;
        return;
      }
      const event = await Promise.race([
        arrival.flight.then(() => "sealed" as const, (error) => {
          failed = { error };
          return "failed" as const;
        }),
        arrival.changed().then(() => "changed" as const),
      ]);
      if (event === "sealed") {
        // Sealed and announced: the rest comes from the copy.
        try {
          sealed = await sealedCopy();
        } catch (error) {
          failed = { error };
        }
        // Cancelled meanwhile: the lease just taken goes too.
        if (ended) await done();
      }
    }
  };
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      try {
        await next(controller);
      } catch (error) {
        // A stream that fails is not cancelled: its lease ends here.
        await done();
        throw error;
      }
    },
    cancel: done,
  }, { highWaterMark: 0 });
}
