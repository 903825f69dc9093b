/**
 * One keep-alive HTTP/1.1 connection to a holder in the native library
 * (section 10 of native/packice.c): the request goes out, the response head
 * comes back to be checked here, and the body goes from the socket straight
 * into the destination (an object's memfd, or memory) and into the piece's
 * hash (SHA-256 or BLAKE3) in the same pass, on Deno's thread pool. No byte
 * of the body passes through JS.
 *
 * @module
 */
import { HTTP_LAYOUT } from "../../native/ffi.ts";
import { Errno, errnoError, errnoName } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import type { PieceAlgorithm } from "../piece_digest.ts";

/** A native call on a connection failed: `errno` says why (ETIMEDOUT past its deadline). */
export class ConnectionError extends Error {
  /** The positive errno number. */
  readonly errno: number;

  /**
   * Creates the error.
   *
   * @param errno The positive errno number.
   * @param operation What failed.
   */
  constructor(errno: number, operation: string) {
    super(`${operation} failed: ${errnoName(errno)}`);
    this.errno = errno;
  }

  /** Whether the deadline passed. */
  get timedOut(): boolean {
    return this.errno === Errno.ETIMEDOUT;
  }
}

/** A recv's `flags`: start a hash first (of {@link hashStart}'s algorithm), end it after. */
export const HASH_START = 1;
/** See {@link HASH_START}: the hash ends, for {@link RangeConnection.digest}. */
export const HASH_END = 2;
const HASH_BLAKE3 = 4;

/** The flags that start a hash with `algorithm`. */
export function hashStart(algorithm: PieceAlgorithm): number {
  return HASH_START | (algorithm === "blake3" ? HASH_BLAKE3 : 0);
}

/** Bytes one request may take (`HTTP_LAYOUT.requestMax`). */
export const REQUEST_MAX: number = HTTP_LAYOUT.requestMax;

const latin1 = new TextDecoder("latin1");

/**
 * A connection to `ip:port`. Calls run one at a time; {@link RangeConnection.cancel}
 * may come at any time, and {@link RangeConnection.close} only once no call is under way.
 */
export class RangeConnection {
  readonly #lib: Native["symbols"];
  readonly #handle: Deno.PointerObject;
  /** The struct's bytes up to the end of its head buffer. */
  readonly #memory: Uint8Array<ArrayBuffer>;
  #closed = false;
  #busy = false;
  /** The algorithm of the hash started last. */
  #algorithm: PieceAlgorithm = "sha256";

  private constructor(lib: Native["symbols"], handle: Deno.PointerObject) {
    this.#lib = lib;
    this.#handle = handle;
    this.#memory = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(handle, HTTP_LAYOUT.head + HTTP_LAYOUT.headMax),
    );
  }

  /**
   * Starts connecting to `ip` (IPv4 or IPv6 text, without brackets) at `port`.
   *
   * @throws {ConnectionError} When no socket could be made (EINVAL: not an IP address).
   */
  static open(lib: Native["symbols"], ip: string, port: number): RangeConnection {
    const out = new BigUint64Array(1);
    const result = lib.pk_http_open(new TextEncoder().encode(`${ip}\0`), port, out);
    if (result < 0) throw new ConnectionError(-result, `Connecting to ${ip}:${port}`);
    return new RangeConnection(lib, Deno.UnsafePointer.create(out[0]!)!);
  }

  /** Body bytes that came with the head and no recv took: nonzero after a body, more than asked. */
  get pending(): number {
    return new DataView(this.#memory.buffer).getInt32(HTTP_LAYOUT.pending, true);
  }

  /**
   * Sends `request` (ASCII, at most {@link REQUEST_MAX} bytes) and reads the response head.
   *
   * @returns The head, through its blank line, as latin1 text.
   * @throws {ConnectionError} When the peer closed, the deadline passed, or the head is too long.
   */
  async request(request: string, timeoutMs: number): Promise<string> {
    if (request.length > REQUEST_MAX) throw new RangeError("Cannot send a request this long");
    for (let i = 0; i < request.length; i++) {
      this.#memory[HTTP_LAYOUT.request + i] = request.charCodeAt(i);
    }
    const length = await this.#call(() =>
      this.#lib.pk_http_request_nb(this.#handle, request.length, deadline(timeoutMs))
    );
    if (length < 0) throw new ConnectionError(-length, "Receiving a response head");
    return latin1.decode(
      this.#memory.subarray(HTTP_LAYOUT.head, HTTP_LAYOUT.head + Number(length)),
    );
  }

  /**
   * Receives `dest.length` body bytes into `dest`, hashing them as they land.
   *
   * @param dest Where the bytes go; its memory must stay mapped until the promise settles.
   * @param flags {@link hashStart} starts a new hash first; {@link HASH_END} ends it, for
   *   {@link RangeConnection.digest}.
   * @throws {ConnectionError} When the peer closed first, or the deadline passed.
   */
  async recv(dest: Uint8Array, timeoutMs: number, flags: number): Promise<void> {
    if (dest.length === 0 && (flags & 2) === 0) return;
    const at = dest.length === 0 ? null : Deno.UnsafePointer.of(dest as Uint8Array<ArrayBuffer>);
    this.#started(flags);
    const result = await this.#call(() =>
      this.#lib.pk_http_recv_nb(this.#handle, at, BigInt(dest.length), deadline(timeoutMs), flags)
    );
    // Kept alive until the call is done.
    void dest.length;
    if (result < 0) throw new ConnectionError(Number(-result), "Receiving a response body");
  }

  /**
   * Receives `length` body bytes into the file `fd` (a memfd) at `offset`,
   * written with `pwrite` and hashed as they land.
   *
   * @param flags As for {@link RangeConnection.recv}.
   * @throws {ConnectionError} When the peer closed first, or the deadline passed.
   * @throws {CapacityExceededError} When the bytes could not be written for want of memory
   * (another typed error for another write error): no fault of the peer.
   */
  async recvFd(
    fd: number,
    offset: number,
    length: number,
    timeoutMs: number,
    flags: number,
  ): Promise<void> {
    if (length === 0 && (flags & 2) === 0) return;
    // A descriptor of its own for the call on another thread: one closed meanwhile takes no byte.
    const own = this.#lib.pk_dup(fd);
    if (own < 0) throw errnoError(-own, "Landing received bytes (dup)");
    this.#started(flags);
    let result;
    try {
      result = await this.#call(() =>
        this.#lib.pk_http_recv_fd_nb(
          this.#handle,
          own,
          BigInt(offset),
          BigInt(length),
          deadline(timeoutMs),
          flags,
        )
      );
    } finally {
      this.#lib.pk_close(own);
    }
    if (result >= 0) return;
    const written = new DataView(this.#memory.buffer).getInt32(HTTP_LAYOUT.writeError, true);
    if (written !== 0) throw errnoError(written, "Landing received bytes (pwrite)");
    throw new ConnectionError(Number(-result), "Receiving a response body");
  }

  /** The digest of the bytes received since the hash started, once ended: `<algorithm>:<hex>`. */
  digest(): string {
    let text = `${this.#algorithm}:`;
    for (let i = HTTP_LAYOUT.digest; i < HTTP_LAYOUT.digest + 32; i++) {
      text += this.#memory[i]!.toString(16).padStart(2, "0");
    }
    return text;
  }

  /** Ends the call under way, and every later one, at once. Idempotent. */
  cancel(): void {
    if (!this.#closed) this.#lib.pk_http_cancel(this.#handle);
  }

  /** Closes the socket and frees the connection; no call may be under way. Idempotent. */
  close(): void {
    if (this.#closed) return;
    if (this.#busy) throw new Error("Cannot close a connection while a call is under way");
    this.#closed = true;
    // Detached before the memory is freed: any view of it drops to length 0.
    this.#memory.buffer.transfer(0);
    this.#lib.pk_http_close(this.#handle);
  }

  #started(flags: number): void {
    if ((flags & HASH_START) !== 0) {
      this.#algorithm = (flags & HASH_BLAKE3) !== 0 ? "blake3" : "sha256";
    }
  }

  async #call<T>(call: () => Promise<T>): Promise<T> {
    if (this.#closed || this.#busy) throw new Error("Cannot use a connection closed or busy");
    this.#busy = true;
    try {
      return await call();
    } finally {
      this.#busy = false;
    }
  }
}

/** A timeout in whole milliseconds for a native call: at least 1, at most 2^31 - 1. */
function deadline(ms: number): number {
  return Math.max(1, Math.min(0x7fffffff, Math.ceil(ms)));
}
