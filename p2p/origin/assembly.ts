/**
 * An origin object being put together here, piece by piece, in the
 * writable view of its CREATE blob: from the origin (its pieces hashed as
 * they complete, the digests becoming the object's record) or from other
 * daemons (each piece checked against the digest its downloader published).
 * The whole is hashed in order as pieces are verified. Verified pieces are
 * served to other daemons at once.
 *
 * A record's piece digests are all of one algorithm, or other daemons refuse
 * it. In a cluster of daemons of both kinds (SHA-256 and BLAKE3 records),
 * the pieces hashed here take the algorithm of the digests known already
 * (those of the downloader whose download this daemon took over); a next
 * downloader of the other kind has the pieces held checked here against
 * its digests ({@link Assembly.retake}), not pulled again; and the record
 * hashes again here whatever pieces are still of the other algorithm.
 *
 * @module
 */
import { pieceCount, pieceSizeFor } from "../content.ts";
import type { ContentRecord } from "../directory.ts";
import {
  newPieceAlgorithm,
  onePieceAlgorithm,
  type PieceAlgorithm,
  pieceAlgorithm,
  pieceDigest,
} from "../piece_digest.ts";
import { type WholeHash, wholeHash } from "../sha256.ts";
import { bitfieldOf, hasPiece } from "../swarm/bitfield.ts";
import type { LentRange } from "../../transport/http/upload_gate.ts";

/** The pieces of one object on their way into a view. */
export class Assembly {
  /** The object id. */
  readonly id: string;
  /** Its size in bytes. */
  readonly size: number;
  /** Its piece length. */
  readonly pieceSize: number;
  /** How many pieces it has. */
  readonly count: number;
  /** The CREATE blob's writable view. */
  readonly view: Uint8Array;
  /**
   * Piece digests known so far, as `piece_digest.ts` has them (from the origin's bytes, or
   * as the downloader published them); a live array, read by piece requests.
   */
  readonly digests: string[];
  readonly #have: Uint8Array;
  #verified = 0;
  readonly #whole: WholeHash = wholeHash();
  #hashed = 0;
  readonly #hashing = new Set<Promise<unknown>>();
  #changed = Promise.withResolvers<void>();

  /**
   * @param id The object id.
   * @param size Its size.
   * @param view Where its bytes go, `size` bytes long.
   */
  constructor(id: string, size: number, view: Uint8Array) {
    this.id = id;
    this.size = size;
    this.pieceSize = pieceSizeFor(size);
    this.count = pieceCount(size, this.pieceSize);
    this.view = view;
    this.digests = new Array(this.count).fill("");
    this.#have = new Uint8Array(this.count);
  }

  /** Pieces verified so far. */
  get verified(): number {
    return this.#verified;
  }

  /** Whether every piece is in and verified. */
  get complete(): boolean {
    return this.#verified === this.count;
  }

  /** Settles at the next piece verified. */
  get changed(): Promise<void> {
    return this.#changed.promise;
  }

  /** Whether piece `piece` is in and verified. */
  has(piece: number): boolean {
    return this.#have[piece] === 1;
  }

  /** The first piece from `from` on not verified yet; `count` when none is missing. */
  firstMissing(from = 0): number {
    let piece = from;
    while (piece < this.count && this.#have[piece] === 1) piece++;
    return piece;
  }

  /** The first piece from `from` on verified; `count` when none is. */
  firstHeld(from = 0): number {
    let piece = from;
    while (piece < this.count && this.#have[piece] !== 1) piece++;
    return piece;
  }

  /** One past the last piece verified here or listed by `bitfields`: where the unknown begins. */
  frontier(bitfields: readonly Uint8Array[]): number {
    for (let piece = this.count - 1; piece >= 0; piece--) {
      if (this.#have[piece] === 1 || bitfields.some((bits) => hasPiece(bits, piece))) {
        return piece + 1;
      }
    }
    return 0;
  }

  /** The bitfield of the pieces verified. */
  bitfield(): Uint8Array {
    return bitfieldOf(this.count, (piece) => this.#have[piece] === 1);
  }

  /** Bytes `[start, end)` of piece `piece`. */
  span(piece: number): { start: number; end: number } {
    const start = piece * this.pieceSize;
    return { start, end: Math.min(this.size, start + this.pieceSize) };
  }

  /**
   * Hashes piece `piece`, whose bytes are all in the view (from the origin):
   * its digest becomes the record's, and the piece counts as verified.
   */
  async hashed(piece: number): Promise<void> {
    this.digests[piece] = await this.#hash(piece, this.#algorithm());
    this.verifiedPiece(piece);
  }

  /**
   * Takes `digest` for piece `piece`, known by a digest of the other
   * algorithm (the next downloader is a daemon of the other kind): a piece
   * held is hashed with it here and takes it when its bytes match (when
   * not, the digest known stays, and the difference shows); one not held
   * takes it.
   */
  async retake(piece: number, digest: string): Promise<void> {
    const known = this.digests[piece] ?? "";
    const algorithm = pieceAlgorithm(digest);
    if (known === "" || algorithm === undefined || pieceAlgorithm(known) === algorithm) return;
    if (this.has(piece) && await this.#hash(piece, algorithm) !== digest) return;
    if (this.digests[piece] === known) this.digests[piece] = digest;
  }

  /** Marks piece `piece` verified (its digest checked by the caller). */
  verifiedPiece(piece: number): void {
    if (this.#have[piece] === 1) return;
    this.#have[piece] = 1;
    this.#verified++;
    while (this.#hashed < this.count && this.#have[this.#hashed] === 1) {
      const { start, end } = this.span(this.#hashed);
      this.#whole.update(this.view.subarray(start, end));
      this.#hashed++;
    }
    this.#changed.resolve();
    this.#changed = Promise.withResolvers<void>();
  }

  /**
   * A copy of bytes `start` to `end` (exclusive) when every piece they
   * touch is verified: what other daemons are served.
   */
  read(start: number, end: number): Uint8Array | undefined {
    return this.#inVerified(start, end) ? this.view.slice(start, end) : undefined;
  }

  /**
   * Bytes `start` to `end` (exclusive) lent to one response when every piece
   * they touch is verified (their bytes stay as they are): the native
   * listener sends them from the blob's memfd by ticket, and never reads
   * `bytes`; a response of the Deno server reads `bytes` when it is made,
   * a copy taken then, as {@link Assembly.read}.
   */
  lend(start: number, end: number): LentRange | undefined {
    if (!this.#inVerified(start, end)) return undefined;
    const view = this.view;
    let copy: Uint8Array | undefined;
    return {
      get bytes() {
        return copy ??= view.slice(start, end);
      },
      done() {},
    };
  }

  #inVerified(start: number, end: number): boolean {
    if (start < 0 || end > this.size || start >= end) return false;
    for (let piece = Math.floor(start / this.pieceSize); piece * this.pieceSize < end; piece++) {
      if (this.#have[piece] !== 1) return false;
    }
    return true;
  }

  /**
   * The record of the whole object, once every piece is verified: the
   * piece digests and the digest of the whole.
   */
  async record(): Promise<ContentRecord> {
    if (!this.complete) throw new RangeError(`Object ${this.id} is missing pieces`);
    if (!onePieceAlgorithm(this.digests)) {
      const algorithm = this.#algorithm();
      for (let piece = 0; piece < this.count; piece++) {
        if (pieceAlgorithm(this.digests[piece]!) !== algorithm) {
          this.digests[piece] = await this.#hash(piece, algorithm);
        }
      }
    }
    return {
      id: this.id,
      size: this.size,
      digest: await this.#whole.digest(),
      pieceSize: this.pieceSize,
      pieceDigests: [...this.digests],
    };
  }

  /** The algorithm of the digests known, if any; else new records'. */
  #algorithm(): PieceAlgorithm {
    const known = this.digests.find((digest) => digest !== "");
    return (known === undefined ? undefined : pieceAlgorithm(known)) ?? newPieceAlgorithm();
  }

  /** The digest of piece `piece`'s bytes with `algorithm`, its view read until {@link Assembly.settled}. */
  async #hash(piece: number, algorithm: PieceAlgorithm): Promise<string> {
    const { start, end } = this.span(piece);
    const hashing = pieceDigest(this.view.subarray(start, end), algorithm);
    this.#hashing.add(hashing);
    try {
      return await hashing;
    } finally {
      this.#hashing.delete(hashing);
    }
  }

  /** Settles once no hash reads the view: only then may its blob go. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#hashing]);
    await this.#whole.settled();
  }
}
