/**
 * The native GET listener of an HTTP server (`--http-fast`): a port of its
 * own where C answers GET and HEAD of sealed objects from their memfds with
 * sendfile (native/packice.c, section 10), without copying their bytes in
 * this process as a `Deno.serve` response does. Every request it does not
 * answer itself (another route, a query, a wrong token, an object it does
 * not hold, a conditional or unusual range) it relays to the Deno server,
 * so refusals are that server's typed JSON errors.
 *
 * Which objects it serves is decided here: an object is offered once a GET
 * through the Deno server has read it under a lease, if it lives in one
 * memfd; it stops being served the moment it leaves the peer's lookups
 * (deleted, evicted, expired), as the peer reports (`RemovalEvents`). A
 * removal between the read and the offer cancels the offer. What the
 * listener serves counts as read for the peer's recency: each second, the
 * objects it served are read once through the peer, so that a cache does
 * not drop first the objects read most.
 *
 * @module
 */
import type { Blob } from "../../core/blob.ts";
import { InvalidArgumentError } from "../../core/errors.ts";
import { Access } from "../../core/lease.ts";
import type { Peer, RemovalEvents } from "../../core/peer.ts";
import { check, Errno } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import { urlHost } from "./address.ts";

const encoder = new TextEncoder();
/** How often the objects the listener served are read through the peer, for its recency. */
const TOUCH_INTERVAL_MS = 1000;
/** Offers refused for want of a file descriptor or memory: the Deno server keeps serving them. */
const OUT_OF_ROOM = new Set<number>([-Errno.EMFILE, -Errno.ENFILE, -Errno.ENOMEM]);

/** Counts of the native GET listener. */
export interface NativeGetCounts {
  /** Requests it answered itself, counted before their first byte leaves. */
  readonly served: number;
  /** Connections it handed to the Deno server. */
  readonly relayed: number;
  /** Body bytes it sent, and those of answers still being sent. */
  readonly bytes: number;
  /** Offers it refused for want of a file descriptor or memory. */
  readonly refused: number;
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
  readonly #peer: Peer;
  #handle: Deno.PointerValue;
  /** The slot of each object served, and the object of each slot. */
  readonly #served = new Map<string, number>();
  readonly #slots: Array<string | undefined> = [];
  readonly #freeSlots: number[] = [];
  readonly #watches = new Map<string, Set<NativeGetWatch>>();
  readonly #stopRemovals: () => void;
  readonly #toucher: ReturnType<typeof setInterval>;
  readonly #touched = new Uint32Array(1024);
  #refused = 0;

  /**
   * Starts the listener's thread.
   *
   * @throws {Deno.errors.AddrInUse} When its port is taken.
   * @throws {InvalidArgumentError} For an address that is not numeric (`localhost` is taken as 127.0.0.1).
   */
  constructor(native: Native, peer: Peer & RemovalEvents, options: NativeGetOptions) {
    this.#native = native;
    this.#peer = peer;
    const token = encoder.encode(options.token ?? "");
    const out = new BigUint64Array(1);
    const up = options.upstream;
    const upHost = up.hostname === "0.0.0.0"
      ? "127.0.0.1"
      : up.hostname === "::" || up.hostname === "[::]"
      ? "::1"
      : up.hostname;
    const hostname = options.hostname === "localhost" ? "127.0.0.1" : options.hostname;
    const address = urlHost(hostname, options.port);
    const started = native.symbols.pk_hg_start(
      cString(hostname),
      options.port,
      cString(upHost),
      up.port,
      token,
      token.length,
      out,
    );
    if (started === -Errno.EADDRINUSE) {
      throw new Deno.errors.AddrInUse(
        `Cannot serve GET natively on ${address}: address in use by another process: choose another port, such as --http-fast ${
          urlHost(hostname, 0)
        } for a free one`,
      );
    }
    if (started === -Errno.EINVAL) {
      throw new InvalidArgumentError(
        `Cannot serve GET natively on ${address}: give a numeric address, such as 127.0.0.1`,
      );
    }
    const port = check(started, `listen on ${address}`);
    this.#handle = Deno.UnsafePointer.create(out[0]!);
    this.url = `http://${urlHost(hostname, port)}`;
    this.#stopRemovals = peer.onRemove((id) => this.#removed(id));
    this.#toucher = setInterval(() => this.#touch(), TOUCH_INTERVAL_MS);
    Deno.unrefTimer(this.#toucher);
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
    // Two reads of it at once: the first offer stands.
    if (this.#served.has(watch.id)) return;
    const blob = blobs[0]!;
    const fd = blob.fd;
    if (fd === undefined) return;
    let head = "";
    for (const [name, value] of Object.entries(headers)) {
      if (name !== "content-length") head += `${name}: ${value}\r\n`;
    }
    const id = encoder.encode(watch.id);
    const lines = encoder.encode(head);
    const slot = this.#freeSlots.pop() ?? this.#slots.length;
    const result = this.#native.symbols.pk_hg_put(
      this.#handle,
      id,
      id.length,
      slot,
      fd,
      BigInt(blob.size),
      lines,
      lines.length,
    );
    if (OUT_OF_ROOM.has(result)) {
      this.#freeSlots.push(slot);
      this.#refused++;
      return;
    }
    check(result, "register an object with the native GET listener");
    this.#slots[slot] = watch.id;
    this.#served.set(watch.id, slot);
  }

  /** What the listener has done so far. */
  counts(): NativeGetCounts {
    const refused = this.#refused;
    if (this.#handle === null) return { served: 0, relayed: 0, bytes: 0, refused };
    const out = new BigUint64Array(3);
    this.#native.symbols.pk_hg_counts(this.#handle, out);
    return { served: Number(out[0]), relayed: Number(out[1]), bytes: Number(out[2]), refused };
  }

  /** Stops the listener, cutting responses under way, and lets its fds go. Idempotent. */
  close(): void {
    if (this.#handle === null) return;
    clearInterval(this.#toucher);
    this.#stopRemovals();
    const handle = this.#handle;
    this.#handle = null;
    this.#served.clear();
    this.#watches.clear();
    check(this.#native.symbols.pk_hg_close(handle), "stop the native GET listener");
  }

  #removed(id: string): void {
    for (const watch of this.#watches.get(id) ?? []) watch.removed = true;
    const slot = this.#served.get(id);
    if (slot === undefined || this.#handle === null) return;
    this.#served.delete(id);
    this.#slots[slot] = undefined;
    this.#freeSlots.push(slot);
    const bytes = encoder.encode(id);
    this.#native.symbols.pk_hg_remove(this.#handle, bytes, bytes.length);
  }

  /** Reads once through the peer each object the listener served since the last time. */
  #touch(): void {
    if (this.#handle === null) return;
    const touched = this.#touched;
    const count = this.#native.symbols.pk_hg_touched(this.#handle, touched, touched.length);
    for (let i = 0; i < count; i++) {
      // A slot freed and taken again since names the object now in it: a read too many, at worst.
      const id = this.#slots[touched[i]!];
      if (id === undefined) continue;
      this.#peer.acquire(id, Access.READ, { local: true })
        .then(({ lease }) => this.#peer.release(lease.id))
        .catch(() => {});
    }
  }
}

function cString(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`${text}\0`);
}
