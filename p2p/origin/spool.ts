/**
 * An origin body of no stated length (chunked), written to a temporary file
 * as it arrives: memory holds one chunk at a time however long the body
 * is. Once it ends its length is known, the object's blob is made, and the
 * bytes are read from the file into it piece by piece, each piece hashed as
 * it lands. The file is unlinked as soon as it is open, so nothing is left
 * behind by a daemon that dies.
 *
 * @module
 */
import { CapacityExceededError, StoreUnavailableError } from "../../core/errors.ts";
import type { Assembly } from "./assembly.ts";
import { type OriginTrip, shown } from "./origin_download.ts";

/** The most bytes taken from the body at once. */
const READ_BYTES = 1 << 20;

/** A body spooled to a file, and its length. */
export class Spool implements Disposable {
  /** The body's length in bytes. */
  readonly size: number;
  readonly #file: Deno.FsFile;

  private constructor(file: Deno.FsFile, size: number) {
    this.#file = file;
    this.size = size;
  }

  /**
   * Writes the body of `response` to a file in `dir` (default: the system's
   * temporary directory), counted and at the trip's download rate.
   *
   * @param limit The most bytes taken: the most the daemon could store.
   * @throws {CapacityExceededError} When the body runs past `limit`.
   * @throws {StoreUnavailableError} When the origin cuts it off.
   */
  static async of(
    trip: OriginTrip,
    response: Response,
    limit: number,
    dir?: string,
  ): Promise<Spool> {
    const path = await Deno.makeTempFile({ prefix: "packice-origin-", ...(dir ? { dir } : {}) });
    const file = await Deno.open(path, { read: true, write: true });
    await Deno.remove(path).catch(() => {});
    let size = 0;
    try {
      // One scratch buffer, read into again and again: no garbage per chunk.
      const reader = response.body?.getReader({ mode: "byob" });
      let scratch = new Uint8Array(READ_BYTES);
      try {
        for (;;) {
          const next = await reader?.read(scratch);
          if (next === undefined || next.done || next.value === undefined) break;
          const chunk = next.value;
          scratch = new Uint8Array(chunk.buffer);
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
          for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
        }
      } catch (error) {
        await reader?.cancel().catch(() => {});
        if (error instanceof CapacityExceededError || trip.signal.aborted) throw error;
        trip.counts.origin_failures_total++;
        throw new StoreUnavailableError(
          `Cannot fetch ${shown(trip.url)}: cut off: ${(error as Error).message}`,
          { cause: error },
        );
      }
      return new Spool(file, size);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /**
   * Reads the body into `assembly`'s view piece by piece, each piece hashed
   * (and so offered to other daemons) as soon as it is in.
   */
  async fill(assembly: Assembly): Promise<void> {
    await this.#file.seek(0, Deno.SeekMode.Start);
    const hashes: Promise<void>[] = [];
    try {
      for (let piece = 0; piece < assembly.count; piece++) {
        const { start, end } = assembly.span(piece);
        for (let at = start; at < end;) {
          const read = await this.#file.read(assembly.view.subarray(at, end));
          if (read === null) throw new StoreUnavailableError("The spooled body ended early");
          at += read;
        }
        hashes.push(assembly.hashed(piece));
      }
    } finally {
      await Promise.allSettled(hashes);
    }
    await Promise.all(hashes);
  }

  /** Closes the file, which frees its bytes. Idempotent. */
  [Symbol.dispose](): void {
    try {
      this.#file.close();
    } catch {
      // Closed already.
    }
  }
}
