import { ClosedError, UnsupportedError } from "../core/errors.ts";
import { Access } from "../core/lease.ts";
import type { ObjectInfo } from "../core/object.ts";
import type { Acquired, AcquireOptions, Peer } from "../core/peer.ts";
import { check } from "./errno.ts";
import { Linux } from "./ffi.ts";
import type { Native } from "./load.ts";

const NAME = new TextEncoder().encode("packice\0");

/**
 * Bytes of a length not known ahead, gathered into a memfd with `pwrite`
 * as they arrive. The memfd grows with each write and is never mapped here,
 * so what it holds costs neither heap nor resident memory of this process.
 * It can then become the blob of an object without a copy (`memfds` of
 * `Peer.acquire`), or be read back chunk by chunk.
 *
 * @example
 * ```ts ignore
 * import { loadNative } from "./load.ts";
 * import { MemfdSpool } from "./spool.ts";
 * using spool = new MemfdSpool(loadNative()!);
 * spool.write(new Uint8Array([1, 2, 3]));
 * console.log(spool.size); // 3
 * ```
 */
export class MemfdSpool implements Disposable {
  readonly #native: Native;
  #fd: number;
  #size = 0;

  /**
   * Creates an empty spool.
   *
   * @param native The native library.
   * @throws {CapacityExceededError} When the kernel has no memfd to give.
   */
  constructor(native: Native) {
    this.#native = native;
    this.#fd = check(
      native.symbols.pk_memfd_create(NAME, Linux.MFD_ALLOW_SEALING),
      "memfd_create",
    );
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#size;
  }

  /** The memfd; -1 once given away or closed. */
  get fd(): number {
    return this.#fd;
  }

  /**
   * Appends `bytes`.
   *
   * @throws {CapacityExceededError} When the kernel has no memory for them.
   * @throws {ClosedError} When the spool is closed or given away.
   */
  write(bytes: Uint8Array): void {
    if (this.#fd < 0) throw new ClosedError("Cannot write to the spool: closed");
    if (bytes.length === 0) return;
    check(
      this.#native.symbols.pk_pwrite_all(this.#fd, bytes, BigInt(bytes.length), BigInt(this.#size)),
      "pwrite",
    );
    this.#size += bytes.length;
  }

  /**
   * Reads the bytes back in order, each chunk a new array of at most `chunk` bytes.
   *
   * @param chunk The most bytes per chunk.
   */
  *chunks(chunk: number): Generator<Uint8Array> {
    for (let at = 0; at < this.#size; at += chunk) {
      if (this.#fd < 0) throw new ClosedError("Cannot read the spool: closed");
      const bytes = new Uint8Array(Math.min(chunk, this.#size - at));
      check(
        this.#native.symbols.pk_pread_all(this.#fd, bytes, BigInt(bytes.length), BigInt(at)),
        "pread",
      );
      yield bytes;
    }
  }

  /** Gives the memfd away: the spool no longer closes it. */
  disown(): void {
    this.#fd = -1;
  }

  /** Closes the memfd unless it was given away. Idempotent. */
  close(): void {
    if (this.#fd >= 0) this.#native.symbols.pk_close(this.#fd);
    this.#fd = -1;
  }

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Makes the bytes of a spool a sealed object on `peer`: the spool's memfd
 * becomes its blob without a copy where the peer takes memfds
 * (`AcquireOptions.memfds`), else they are written in chunks. On failure
 * the object is discarded.
 *
 * @param peer The peer.
 * @param spool The bytes; its memfd is given away when the peer takes it.
 * @param objectId The object id; a fresh one when undefined.
 * @param options The CREATE lease's TTL, the object's TTL and metadata.
 * @param chunk The most bytes per write when the bytes are copied.
 * @returns The sealed object.
 */
export async function storeSpool(
  peer: Peer,
  spool: MemfdSpool,
  objectId: string | undefined,
  options: Omit<AcquireOptions, "size" | "memfds">,
  chunk = 1 << 20,
): Promise<ObjectInfo> {
  const size = spool.size;
  let acquired: Acquired | undefined;
  try {
    // An empty memfd is no blob worth taking over.
    if (size > 0) {
      acquired = await peer.acquire(objectId, Access.CREATE, {
        ...options,
        size,
        memfds: [spool.fd],
      });
      spool.disown();
    }
  } catch (error) {
    if (!(error instanceof UnsupportedError)) throw error;
  }
  const copy = acquired === undefined;
  acquired ??= await peer.acquire(objectId, Access.CREATE, { ...options, size });
  const lease = acquired.lease.id;
  try {
    if (copy) {
      let at = 0;
      for (const bytes of spool.chunks(chunk)) {
        await acquired.blobs[0]!.write(at, bytes);
        at += bytes.length;
      }
    }
    return await peer.seal(lease);
  } catch (error) {
    await peer.discard(lease).catch(() => {});
    throw error;
  } finally {
    await peer.release(lease).catch(() => {});
  }
}
