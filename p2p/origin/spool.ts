/**
 * An origin body of no stated length (chunked), written to a temporary file
 * as it arrives: memory holds one piece at a time however long the body
 * is. Once it ends its length is known, the object's blob is made, and the
 * bytes are read from the file into it piece by piece, each piece hashed as
 * it lands. The file is unlinked as soon as it is open, so nothing is left
 * behind by a daemon that dies.
 *
 * Its length unknown, the body is cut into spool pieces of
 * {@link SPOOL_PIECE} bytes (the piece size of every object up to 2000 MiB),
 * each hashed as it is written: the downloader publishes their digests, and
 * its followers pull them (from it and from each other) into spools of their
 * own while the body still arrives, each checked against its digest, so that
 * once the length is known their blobs fill from their own files. A spool
 * outlives the downloader its pieces came from: the daemon that takes the
 * download over spools the rest after them (`spool_resume.ts`), the others
 * keep pulling into theirs; a spool of another version than the
 * downloader's is emptied ({@link Spool.reset}).
 *
 * No byte of a spool file is written twice. A range handed out (to the
 * native GET listener, which sends it later from a descriptor of its own,
 * with no word back when it is done) must keep the bytes it had: so a reset
 * moves the spool to a new file rather than write the next version over the
 * old one, and a piece dropped and put again in one version (another
 * downloader's digest said it was not this body's) goes to the next layer
 * of the version, a file of its own in which that piece's place was never
 * written, at the same offset (ranges keep their offsets). A file's bytes
 * are freed once the spool let it go (closed, or reset) and the last
 * descriptor the listener took of it closed.
 *
 * @module
 */
import { CapacityExceededError, ConflictError, StoreUnavailableError } from "../../core/errors.ts";
import type { Meta } from "../../core/validate.ts";
import { MIN_PIECE_SIZE } from "../content.ts";
import { digestLike, pieceAlgorithm } from "../piece_digest.ts";
import { bitfieldOf } from "../swarm/bitfield.ts";
import type { Assembly } from "./assembly.ts";
import { type OriginTrip, shown } from "./origin_download.ts";
import { loadNative } from "../../native/load.ts";

const encoder = new TextEncoder();

/** The bytes of a spool piece; the last one may be shorter. */
export const SPOOL_PIECE = MIN_PIECE_SIZE;

/** A spool's file, unlinked, and a read-only descriptor of it for the native GET listener. */
interface SpoolFile {
  readonly file: Deno.FsFile;
  /** None without the native library. */
  readonly fd: number | undefined;
}

/** Where the bytes of a spool piece held are: a layer of the version, at the piece's offset. */
interface Place {
  readonly layer: number;
  readonly length: number;
}

/** A body spooled to a file, whole (the downloader's) or piece by piece (a follower's). */
export class Spool implements Disposable {
  readonly #dir: string | undefined;
  /**
   * The files of this generation's version ({@link Spool.reset} makes
   * others): each piece at its offset in the body, in the first layer, or in
   * a later one once its place in the earlier ones was written.
   */
  #layers: SpoolFile[];
  /** Digests of the spool pieces held, `""` for the others; grows as pieces come. */
  readonly #digests: string[] = [];
  /** Where each spool piece held is. */
  #places: (Place | undefined)[] = [];
  /** Of each spool piece, the layers its place was written in: the next write goes past them. */
  #written: number[] = [];
  /** The body's length, once it ended. */
  #size: number | undefined;
  /** File operations one at a time: each moves the file's offset. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #generation = 0;
  /**
   * The response whose body the pieces are (its status and headers): its
   * validator tells whether another downloader's pieces are of the same
   * version. Undefined until known.
   */
  meta: Meta | undefined;

  private constructor(dir: string | undefined) {
    this.#dir = dir;
    this.#layers = [newFile(dir)];
  }

  /** A new empty spool in `dir` (default: the system's temporary directory). */
  static open(dir?: string): Spool {
    return new Spool(dir);
  }

  /** The body's length in bytes, once it ended (undefined before). */
  get size(): number | undefined {
    return this.#size;
  }

  /** Digests of the spool pieces, in order, `""` for those not held. */
  get digests(): readonly string[] {
    return this.#digests;
  }

  /** Whether spool piece `piece` is held. */
  has(piece: number): boolean {
    return (this.#digests[piece] ?? "") !== "";
  }

  /** The bitfield of the spool pieces held. */
  bitfield(): Uint8Array {
    return bitfieldOf(this.#digests.length, (piece) => this.has(piece));
  }

  /**
   * Writes the body of `response` to the file from byte `from` (a spool
   * piece's start: where a resume's range begins), counted and at the trip's
   * download rate, each spool piece hashed once written; sets
   * {@link Spool.size}. A piece held already (pulled from an earlier
   * downloader) is not written again: the origin's bytes must hash to its
   * digest.
   *
   * @param limit The most bytes taken: the most the daemon could store.
   * @throws {CapacityExceededError} When the body runs past `limit`.
   * @throws {ConflictError} When a piece held differs from the origin's bytes.
   * @throws {StoreUnavailableError} When the origin cuts it off.
   */
  async take(trip: OriginTrip, response: Response, limit: number, from = 0): Promise<void> {
    if (from % SPOOL_PIECE !== 0) throw new RangeError(`Cannot spool from byte ${from}`);
    // One piece buffer, read into again and again: no garbage per chunk.
    const reader = response.body?.getReader({ mode: "byob" });
    let buffer = new ArrayBuffer(SPOOL_PIECE);
    let filled = 0;
    let size = from;
    const spill = async () => {
      const piece = new Uint8Array(buffer, 0, filled);
      const index = (size - filled) / SPOOL_PIECE;
      // Hashed as the piece held was, by this daemon or an older one.
      const digest = await digestLike(piece, this.#digests[index] ?? "");
      if (this.has(index)) {
        if (this.#digests[index] !== digest) {
          throw new ConflictError(
            `Cannot fetch ${
              shown(trip.url)
            }: the origin's content changed during the download (spool piece ${index} differs from the one held)`,
          );
        }
      } else {
        this.#held(index, digest, await this.#write(index, piece));
      }
      filled = 0;
    };
    try {
      for (;;) {
        const next = await reader?.read(new Uint8Array(buffer, filled, SPOOL_PIECE - filled));
        if (next === undefined) break;
        // The read took the buffer over: its view gives it back, even at the end.
        if (next.value !== undefined) buffer = next.value.buffer;
        if (next.done || next.value === undefined) break;
        const chunk = next.value;
        size += chunk.length;
        if (size > limit) {
          throw new CapacityExceededError(
            `Cannot fetch ${
              shown(trip.url)
            }: its body, of no stated length, runs past ${limit} bytes, the most this daemon stores (raise --capacity, or have the origin send Content-Length)`,
          );
        }
        trip.counts.origin_bytes_total += chunk.length;
        await trip.rate?.take(chunk.length, trip.signal);
        filled += chunk.length;
        if (filled === SPOOL_PIECE) await spill();
      }
      if (filled > 0) await spill();
    } catch (error) {
      await reader?.cancel().catch(() => {});
      if (
        error instanceof CapacityExceededError || error instanceof ConflictError ||
        trip.signal.aborted
      ) throw error;
      trip.counts.origin_failures_total++;
      throw new StoreUnavailableError(
        `Cannot fetch ${shown(trip.url)}: cut off: ${(error as Error).message}`,
        { cause: error },
      );
    }
    // Pieces past the end (held of a longer body) are not of this one.
    this.#digests.length = this.#places.length = Math.ceil(size / SPOOL_PIECE);
    this.#size = size;
  }

  /** Writes spool piece `piece`, its bytes checked against `digest` by the caller. */
  async put(piece: number, bytes: Uint8Array, digest: string): Promise<void> {
    const generation = this.#generation;
    const place = await this.#write(piece, bytes);
    // Reset meanwhile: the bytes went to the old version's file.
    if (this.#generation === generation) this.#held(piece, digest, place);
  }

  /**
   * Forgets spool piece `piece`: another downloader's digest says it is not
   * this body's. Its bytes stay where they are, for the ranges handed out;
   * put again, it goes to another layer.
   */
  drop(piece: number): void {
    if (!this.has(piece)) return;
    this.#digests[piece] = "";
    this.#places[piece] = undefined;
  }

  /**
   * Holds spool piece `piece` under `digest`, the downloader's now, when its
   * bytes are `digest`'s; drops it when not. A digest of another algorithm
   * than the one held (a downloader of another kind of daemon) is checked
   * here, the bytes read from the file and hashed with it: not pulled again.
   */
  async check(piece: number, digest: string): Promise<void> {
    const held = this.#digests[piece] ?? "";
    const place = this.#places[piece];
    if (held === digest || held === "" || place === undefined) return;
    if (pieceAlgorithm(held) === pieceAlgorithm(digest)) {
      this.drop(piece);
      return;
    }
    const bytes = new Uint8Array(place.length);
    const read = await this.#readInto(piece * SPOOL_PIECE, bytes);
    const hashed = read === bytes.length ? await digestLike(bytes, digest) : undefined;
    // Dropped, put again or reset meanwhile: what was checked is not what is held.
    if (this.#places[piece] !== place) return;
    if (hashed === digest) this.#digests[piece] = digest;
    else this.drop(piece);
  }

  /**
   * Forgets every piece: they are of another version than `meta`'s, whose
   * body the spool holds from now on, in a new file. Pieces on their way in
   * from before are refused ({@link Spool.generation}); the old files are
   * closed once what was queued on them is done.
   */
  reset(meta: Meta | undefined): void {
    if (!this.#closed) {
      const old = this.#layers;
      this.#layers = [newFile(this.#dir)];
      this.#queue = this.#queue.then(() => old.forEach(closeFile)).catch(() => {});
    }
    this.#digests.length = 0;
    this.#places = [];
    this.#written = [];
    this.#size = undefined;
    this.meta = meta;
    this.#generation++;
  }

  /** Counts the resets: a piece pulled in one generation is put only if it is still current. */
  get generation(): number {
    return this.#generation;
  }

  /** Bytes from the start that every spool piece holds: where a resume begins. */
  get contiguous(): number {
    let piece = 0;
    while (this.has(piece)) piece++;
    return piece * SPOOL_PIECE;
  }

  /** Whether any spool piece is held. */
  get holdsAny(): boolean {
    return this.#digests.some((digest) => digest !== "");
  }

  /**
   * Bytes `start` to `end` (exclusive) when every spool piece they touch is
   * held: what other daemons are served.
   */
  async read(start: number, end: number): Promise<Uint8Array<ArrayBuffer> | undefined> {
    if (start < 0 || start >= end) return undefined;
    for (let piece = Math.floor(start / SPOOL_PIECE); piece * SPOOL_PIECE < end; piece++) {
      if (!this.has(piece)) return undefined;
    }
    const bytes = new Uint8Array(end - start);
    const read = await this.#readInto(start, bytes);
    return read === bytes.length ? bytes : undefined;
  }

  /**
   * The file behind bytes `start` to `end` (exclusive, cut at the body's end)
   * when every spool piece they touch is held: a read-only descriptor of it,
   * valid until the spool is disposed, and the body's length, undefined
   * while that is unknown. Undefined without the native library, or when
   * the pieces are in different layers (then {@link Spool.read} has them).
   * No byte of the file is ever written again: the bytes handed out stay.
   */
  file(
    start: number,
    end: number,
  ): { fd: number; end: number; size: number | undefined } | undefined {
    if (this.#closed) return undefined;
    const last = Math.min(end, this.#size ?? end);
    if (start < 0 || start >= last || !this.#holds(start, last)) return undefined;
    const first = this.#places[Math.floor(start / SPOOL_PIECE)]!.layer;
    for (let piece = Math.floor(start / SPOOL_PIECE); piece * SPOOL_PIECE < last; piece++) {
      if (this.#places[piece]!.layer !== first) return undefined;
    }
    const { fd } = this.#layers[first]!;
    return fd === undefined ? undefined : { fd, end: last, size: this.#size };
  }

  /**
   * Reads the spooled bytes into `assembly`'s view piece by piece: with
   * `hash`, every piece, each hashed (and so offered to other daemons) as
   * soon as it is in; without, only the pieces whose bytes are all held,
   * each marked verified (its spool pieces were checked against the
   * downloader's digests, and the whole is checked against its digest).
   */
  async fill(assembly: Assembly, hash = true): Promise<void> {
    const hashes: Promise<void>[] = [];
    try {
      for (let piece = 0; piece < assembly.count; piece++) {
        const { start, end } = assembly.span(piece);
        if (!hash && !this.#holds(start, end)) continue;
        const read = await this.#readInto(start, assembly.view.subarray(start, end));
        if (read !== end - start) throw new StoreUnavailableError("The spooled body ended early");
        if (hash) hashes.push(assembly.hashed(piece));
        else assembly.verifiedPiece(piece);
      }
    } finally {
      await Promise.allSettled(hashes);
    }
    await Promise.all(hashes);
  }

  /** Closes the files, which frees their bytes. Idempotent. */
  [Symbol.dispose](): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#layers.forEach(closeFile);
  }

  #held(piece: number, digest: string, place: Place): void {
    while (this.#digests.length <= piece) this.#digests.push("");
    this.#digests[piece] = digest;
    this.#places[piece] = place;
  }

  /** Whether every spool piece of bytes `[start, end)` is held. */
  #holds(start: number, end: number): boolean {
    for (let piece = Math.floor(start / SPOOL_PIECE); piece * SPOOL_PIECE < end; piece++) {
      if (!this.has(piece)) return false;
    }
    return true;
  }

  /**
   * Writes spool piece `piece` at its offset in the first layer of the
   * current version (the one at the call, reset or not) where its place was
   * never written; returns where it went.
   */
  #write(piece: number, bytes: Uint8Array): Promise<Place> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("The spool is closed"));
    const layer = this.#written[piece] ?? 0;
    this.#written[piece] = layer + 1;
    const { file } = this.#layers[layer] ??= newFile(this.#dir);
    return this.#queued(async () => {
      await file.seek(piece * SPOOL_PIECE, Deno.SeekMode.Start);
      for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
      return { layer, length: bytes.length };
    });
  }

  /**
   * Reads the body from byte `at` into `target`, each spool piece from the
   * layer it is held in at the call (the first layer for a piece not held),
   * until `target` is full or a piece ends short; returns the count.
   */
  #readInto(at: number, target: Uint8Array): Promise<number> {
    const layers = this.#layers;
    const spans: { file: Deno.FsFile; at: number; length: number }[] = [];
    for (let done = 0; done < target.length;) {
      const piece = Math.floor((at + done) / SPOOL_PIECE);
      const length = Math.min(target.length - done, (piece + 1) * SPOOL_PIECE - (at + done));
      spans.push({ file: layers[this.#places[piece]?.layer ?? 0]!.file, at: at + done, length });
      done += length;
    }
    return this.#queued(async () => {
      let done = 0;
      for (const span of spans) {
        await span.file.seek(span.at, Deno.SeekMode.Start);
        let got = 0;
        while (got < span.length) {
          const read = await span.file.read(target.subarray(done + got, done + span.length));
          if (read === null) break;
          got += read;
        }
        done += got;
        if (got < span.length) break;
      }
      return done;
    });
  }

  #queued<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work);
    this.#queue = next.catch(() => {});
    return next;
  }
}

/** A new spool file in `dir`, unlinked at once. */
function newFile(dir: string | undefined): SpoolFile {
  const path = Deno.makeTempFileSync({ prefix: "packice-origin-", ...(dir ? { dir } : {}) });
  try {
    const file = Deno.openSync(path, { read: true, write: true });
    // O_RDONLY (0): the listener maps what it sends, and a read-only mapping is all it needs.
    const opened = loadNative()?.symbols.pk_open(encoder.encode(`${path}\0`), 0, 0) ?? -1;
    return { file, fd: opened >= 0 ? opened : undefined };
  } finally {
    try {
      Deno.removeSync(path);
    } catch {
      // Left for the system's cleaning of its temporary directory.
    }
  }
}

/** Closes both descriptors of `spoolFile`: its bytes go once no one else holds one. */
function closeFile({ file, fd }: SpoolFile): void {
  file.close();
  if (fd !== undefined) loadNative()?.symbols.pk_close(fd);
}
