/**
 * The native GET listener of an HTTP server (`--http-fast`): a port of its
 * own where C answers GET and HEAD of sealed objects from their memfds with
 * sendfile (native/packice.c, section 10), without copying their bytes in
 * this process as a `Deno.serve` response does. Every request it does not
 * answer itself (another route, a query, a wrong token, an object it does
 * not hold, a conditional or unusual range) it hands, with its connection,
 * to the Deno server, so refusals are that server's typed JSON errors.
 *
 * Which objects it serves is decided here: an object is offered once a GET
 * through the Deno server has read it under a lease, if it lives in one
 * memfd; it stops being served the moment it leaves the peer's lookups
 * (deleted, evicted, expired), as the peer reports (`RemovalEvents`). A
 * removal between the read and the offer cancels the offer.
 *
 * @module
 */
import type { Blob } from "../../core/blob.ts";
import type { Peer, RemovalEvents } from "../../core/peer.ts";
import { check } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import { urlHost } from "./address.ts";

const encoder = new TextEncoder();

/** Counts of the native GET listener. */
export interface NativeGetCounts {
  /** Requests it answered itself. */
  readonly served: number;
  /** Connections it handed to the Deno server. */
  readonly relayed: number;
  /** Body bytes it sent. */
  readonly bytes: number;
}

/** A read that may end in an offer; a removal of its object meanwhile cancels it. */
export interface NativeGetWatch {
  readonly id: string;
  removed: boolean;
}

/** Where the native GET listener listens and what it relays to. */
export interface NativeGetOptions {
  /** The address to listen on (numeric). */
  readonly hostname: string;
  /** The port; 0 picks a free one. */
  readonly port: number;
  /** The Deno server it hands other requests to. */
  readonly upstream: Deno.NetAddr;
  /** The bearer token requests must carry, if any. */
  readonly token: string | undefined;
}

/** A running native GET listener and the objects it serves. */
export class NativeGet {
  /** Its base URL, such as `http://127.0.0.1:7071`. */
  readonly url: string;
  readonly #native: Native;
  #handle: Deno.PointerValue;
  readonly #served = new Set<string>();
  readonly #watches = new Map<string, Set<NativeGetWatch>>();
  readonly #stopRemovals: () => void;

  /**
   * Starts the listener's thread.
   *
   * @throws {SystemError} When it cannot listen, such as on a port in use.
   */
  constructor(native: Native, peer: Peer & RemovalEvents, options: NativeGetOptions) {
    this.#native = native;
    const token = encoder.encode(options.token ?? "");
    const out = new BigUint64Array(1);
    const up = options.upstream;
    const upHost = up.hostname === "0.0.0.0"
      ? "127.0.0.1"
      : up.hostname === "::" || up.hostname === "[::]"
      ? "::1"
      : up.hostname;
    const port = check(
      native.symbols.pk_hg_start(
        cString(options.hostname),
        options.port,
        cString(upHost),
        up.port,
        token,
        token.length,
        out,
      ),
      `listen on ${urlHost(options.hostname, options.port)}`,
    );
    this.#handle = Deno.UnsafePointer.create(out[0]!);
    this.url = `http://${urlHost(options.hostname, port)}`;
    this.#stopRemovals = peer.onRemove((id) => this.#removed(id));
  }

  /**
   * Begins a read through the Deno server that may end in an offer of its
   * object; pass the watch to {@link NativeGet.offer}, or to
   * {@link NativeGet.unwatch} when nothing is offered.
   */
  watch(id: string): NativeGetWatch | undefined {
    if (this.#served.has(id) || this.#handle === null) return undefined;
    const watch = { id, removed: false };
    const watches = this.#watches.get(id);
    if (watches === undefined) this.#watches.set(id, new Set([watch]));
    else watches.add(watch);
    return watch;
  }

  /** Ends a watch without an offer. */
  unwatch(watch: NativeGetWatch): void {
    const watches = this.#watches.get(watch.id);
    watches?.delete(watch);
    if (watches?.size === 0) this.#watches.delete(watch.id);
  }

  /**
   * Serves the object read under `watch` from now on, unless it left the
   * peer's lookups since the watch began or its bytes are not one memfd.
   * Call it while the lease of the read holds `blobs`.
   *
   * @param watch What {@link NativeGet.watch} gave.
   * @param blobs The object's blobs, under a lease.
   * @param headers The headers of its whole body; `content-length` is the listener's to write.
   */
  offer(watch: NativeGetWatch, blobs: readonly Blob[], headers: Record<string, string>): void {
    this.unwatch(watch);
    if (watch.removed || this.#handle === null || blobs.length !== 1) return;
    const blob = blobs[0]!;
    const fd = blob.fd;
    if (fd === undefined) return;
    let head = "";
    for (const [name, value] of Object.entries(headers)) {
      if (name !== "content-length") head += `${name}: ${value}\r\n`;
    }
    const id = encoder.encode(watch.id);
    const lines = encoder.encode(head);
    check(
      this.#native.symbols.pk_hg_put(
        this.#handle,
        id,
        id.length,
        fd,
        BigInt(blob.size),
        lines,
        lines.length,
      ),
      "register an object with the native GET listener",
    );
    this.#served.add(watch.id);
  }

  /** What the listener has done so far. */
  counts(): NativeGetCounts {
    if (this.#handle === null) return { served: 0, relayed: 0, bytes: 0 };
    const out = new BigUint64Array(3);
    this.#native.symbols.pk_hg_counts(this.#handle, out);
    return { served: Number(out[0]), relayed: Number(out[1]), bytes: Number(out[2]) };
  }

  /** Stops the listener, cutting responses under way, and lets its fds go. Idempotent. */
  close(): void {
    if (this.#handle === null) return;
    this.#stopRemovals();
    const handle = this.#handle;
    this.#handle = null;
    this.#served.clear();
    this.#watches.clear();
    check(this.#native.symbols.pk_hg_close(handle), "stop the native GET listener");
  }

  #removed(id: string): void {
    for (const watch of this.#watches.get(id) ?? []) watch.removed = true;
    if (!this.#served.delete(id) || this.#handle === null) return;
    const bytes = encoder.encode(id);
    this.#native.symbols.pk_hg_remove(this.#handle, bytes, bytes.length);
  }
}

function cString(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`${text}\0`);
}
