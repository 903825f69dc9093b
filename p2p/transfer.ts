/**
 * One object moving into this daemon, piece by piece, from holders over HTTP.
 *
 * Bytes go from each response chunk straight into the writable view of the
 * object's CREATE blob: no piece, and never the whole object, is buffered in
 * JS. Each piece is checked against its digest as soon as its last byte is in
 * (on another thread), and the whole object against the content digest,
 * hashed in order as pieces are verified. A piece that fails costs that piece:
 * pieces already verified stay, and the next source is asked only for the
 * rest, so a transfer can move between sources (and, later, draw on several
 * at once) without starting over.
 *
 * @module
 */
import type { ContentRecord, Holder } from "./directory.ts";
import { pieceCount } from "./content.ts";
import { sha256, type WholeHash, wholeHash } from "./sha256.ts";

/**
 * Why a source was given up: it could not be reached or was cut off, it
 * answered 404 (it does not hold the object), another unexpected status, a
 * wrong length, bytes that do not match their digest, or too late.
 */
export type SourceFault = "unreachable" | "missing" | "status" | "length" | "digest" | "timeout";

/** A source that could not supply its pieces; the transfer goes on with another. */
export class SourceError extends Error {
  /** What went wrong. */
  readonly fault: SourceFault;
  /** The holder. */
  readonly holder: Holder;

  /**
   * Creates the error.
   *
   * @param fault What went wrong.
   * @param holder The holder.
   * @param message Detail.
   * @param options Standard error options, such as `cause`.
   */
  constructor(fault: SourceFault, holder: Holder, message: string, options?: ErrorOptions) {
    super(`Holder ${holder.node} at ${holder.address}: ${message}`, options);
    this.fault = fault;
    this.holder = holder;
  }
}

/** Options of {@link Transfer}. */
export interface TransferOptions {
  /** The cluster token, sent as a bearer token. */
  readonly token?: string | undefined;
  /** Piece requests in flight per source. Default 3, as Kraken does. */
  readonly inFlight?: number;
  /**
   * Milliseconds a piece may take: `base + perMiB` for each MiB of it, as
   * Kraken's 4 s + 4 s/MB. Default `{ base: 4000, perMiB: 4000 }`.
   */
  readonly pieceTimeout?: { readonly base: number; readonly perMiB: number };
  /** Called with the bytes of each chunk as it lands, for metrics. */
  readonly onBytes?: (bytes: number) => void;
}

/** The pieces of one object arriving into `view`, verified as they complete. */
export class Transfer {
  readonly #record: ContentRecord;
  readonly #view: Uint8Array;
  readonly #options: TransferOptions;
  readonly #client: Deno.HttpClient;
  readonly #verified: boolean[];
  readonly #whole: WholeHash = wholeHash();
  /** Pieces before this one are verified and in the whole hash. */
  #hashed = 0;

  /**
   * Starts a transfer; nothing is fetched before {@link Transfer.from}.
   *
   * @param record The object's content record, checked already.
   * @param view The CREATE blob's writable view, `record.size` bytes.
   * @param options Token, requests in flight, piece timeouts.
   */
  constructor(record: ContentRecord, view: Uint8Array, options: TransferOptions = {}) {
    this.#record = record;
    this.#view = view;
    this.#options = options;
    this.#client = Deno.createHttpClient({});
    this.#verified = new Array(pieceCount(record.size, record.pieceSize)).fill(false);
  }

  /** Pieces still missing. */
  get missing(): number {
    return this.#verified.filter((done) => !done).length;
  }

  /**
   * Fetches every missing piece from `holder`, a few at a time.
   *
   * @throws {SourceError} When the holder fails; pieces verified so far stay.
   */
  async from(holder: Holder, signal?: AbortSignal): Promise<void> {
    const queue = this.#verified.flatMap((done, piece) => done ? [] : [piece]);
    const failure = new AbortController();
    const stop = signal === undefined ? failure.signal : AbortSignal.any([signal, failure.signal]);
    const lanes = Math.max(1, this.#options.inFlight ?? 3);
    let error: unknown;
    await Promise.all(Array.from({ length: lanes }, async () => {
      for (let piece = queue.shift(); piece !== undefined; piece = queue.shift()) {
        try {
          await this.#piece(holder, piece, stop);
        } catch (cause) {
          error ??= cause;
          failure.abort();
          return;
        }
      }
    }));
    if (error !== undefined) {
      if (signal?.aborted) throw signal.reason;
      throw error;
    }
  }

  /**
   * The whole object's digest, once every piece is in.
   *
   * @returns Whether it is the record's content digest.
   */
  async verifyWhole(): Promise<boolean> {
    if (this.#hashed !== this.#verified.length) return false;
    return await this.#whole.digest() === this.#record.digest;
  }

  /**
   * Ends the HTTP client, and settles once no hash reads the view any more:
   * only then may the blob behind it go. Idempotent.
   */
  async close(): Promise<void> {
    try {
      this.#client.close();
    } catch {
      // Closed already.
    }
    await this.#whole.settled();
  }

  async #piece(holder: Holder, piece: number, signal: AbortSignal): Promise<void> {
    const { id, size, pieceSize } = this.#record;
    const start = piece * pieceSize;
    const end = Math.min(size, start + pieceSize);
    const timeout = this.#options.pieceTimeout ?? { base: 4000, perMiB: 4000 };
    const deadline = AbortSignal.timeout(
      timeout.base + timeout.perMiB * (end - start) / (1 << 20),
    );
    const headers: Record<string, string> = { range: `bytes=${start}-${end - 1}` };
    if (this.#options.token !== undefined) headers.authorization = `Bearer ${this.#options.token}`;
    const url = `${holder.address}/v1/objects/${encodeURIComponent(id)}?local=1`;
    const fault = (kind: SourceFault, message: string, cause?: unknown) =>
      new SourceError(kind, holder, `piece ${piece} of ${id}: ${message}`, { cause });
    let response: Response;
    try {
      response = await fetch(url, {
        headers,
        client: this.#client,
        signal: AbortSignal.any([signal, deadline]),
      });
    } catch (cause) {
      if (signal.aborted) throw cause;
      if (deadline.aborted) throw fault("timeout", "no answer in time", cause);
      throw fault("unreachable", (cause as Error).message, cause);
    }
    if (response.status !== 206 || response.body === null) {
      await response.body?.cancel();
      throw fault(
        response.status === 404 ? "missing" : "status",
        `answered ${response.status} to a range request`,
      );
    }
    if (response.headers.get("content-range") !== `bytes ${start}-${end - 1}/${size}`) {
      await response.body.cancel();
      throw fault(
        "length",
        `content range ${response.headers.get("content-range")}, not bytes ${start}-${
          end - 1
        }/${size}`,
      );
    }
    const view = this.#view;
    let at = start;
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (at + value.length > end) {
          throw fault("length", `sent more than the ${end - start} bytes of the piece`);
        }
        view.set(value, at);
        at += value.length;
        this.#options.onBytes?.(value.length);
      }
    } catch (cause) {
      await reader.cancel().catch(() => {});
      if (cause instanceof SourceError || signal.aborted) throw cause;
      if (deadline.aborted) throw fault("timeout", "piece not received in time", cause);
      throw fault("unreachable", `cut off: ${(cause as Error).message}`, cause);
    }
    if (at !== end) throw fault("length", `sent ${at - start} of the ${end - start} bytes`);
    const digest = await sha256(view.subarray(start, end) as Uint8Array<ArrayBuffer>);
    if (digest !== this.#record.pieceDigests[piece]) {
      throw fault("digest", `bytes hash to ${digest}, not ${this.#record.pieceDigests[piece]}`);
    }
    this.#verified[piece] = true;
    while (this.#hashed < this.#verified.length && this.#verified[this.#hashed]) {
      const from = this.#hashed * pieceSize;
      this.#whole.update(view.subarray(from, Math.min(size, from + pieceSize)));
      this.#hashed++;
    }
  }
}
