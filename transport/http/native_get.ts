/**
 * The native GET listener of an HTTP server (`--http-fast`): a port of its
 * own where C answers GET and HEAD of sealed objects from their memfds with
 * sendfile (native/packice.c, section 10), without copying their bytes in
 * this process as a `Deno.serve` response does. Every request it does not
 * answer itself (another route, a query, a wrong token, an object it does
 * not hold, a conditional or unusual range) it relays to the Deno server,
 * so refusals are that server's typed JSON errors (the one it answers
 * itself, a relay's range not verified yet, has the body that server gave).
 *
 * A request the listener hands to the Deno server carries the listener's
 * secret ({@link NativeGet.handedOver}), and the Deno server may answer it
 * with a ticket instead of the bytes ({@link NativeGet.ticket}): the
 * listener sends the range from the memfd itself (paced by the upload bucket
 * the Deno server's own bodies take from, with upload limits), and reports
 * when it is done, so that the slot and the lease held for it are freed
 * then. The bytes never pass through this process's JS, and cost no copy in
 * it. Pieces other daemons ask for (`?local=1`, objects sealed or still
 * arriving) always go so. With upload limits (`tickets`), no object is
 * offered either: the Deno server decides every GET (slots, the repeat
 * guard, the ranges a relay has verified).
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
import { sliceOf } from "../rate_limit.ts";
import { urlHost } from "./address.ts";
import type { NativeBucket } from "./native_bucket.ts";
import { errorBody } from "./errors.ts";
import { notInYet, type PartialHolder, type RelayedPieces, type RelaySink } from "./upload_gate.ts";

const encoder = new TextEncoder();
/** The request header with the listener's secret: the request came through it. */
const OFFER_HEADER = "packice-native-offer";
/** A ticket's answer (`pk_hg_ticket`): 200, 206, or 206 whose `Content-Range` total is `*`. */
const WHOLE = 0, PARTIAL = 1, PARTIAL_OPEN = 2;
/** The response header naming a ticket, which the listener takes out. */
const TICKET_HEADER = "packice-ticket";
/**
 * A ticket no connection claimed within this long is taken back: its
 * answer never reached the listener (the asker went away meanwhile).
 */
const CLAIM_MS = 2000;
/** The longest one wait for tickets done lasts on the thread pool before it is made again. */
const WAIT_DONE_MS = 1000;
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
  /** Ranges of objects still arriving it answered without the Deno server. */
  readonly relayServed: number;
  /** Of those, the ones under way: each takes an upload slot the Deno server's gate does not hold. */
  readonly relayBodies: number;
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
  /**
   * Bodies are sent by ticket only, paced by this bucket when there is one
   * (upload limits): no object is offered. Default: false (objects read are
   * offered; requests handed over may still be answered by ticket).
   */
  readonly tickets?: boolean | undefined;
  /** The upload bucket the listener's bodies take from, with `tickets`. */
  readonly bucket?: NativeBucket | undefined;
  /**
   * Bodies under way on the listener (tickets included) below which it
   * answers a relay's range itself; at the limit, the Deno server's upload
   * gate decides. Default: no limit.
   */
  readonly maxUploads?: number | undefined;
}

/** A range handed to the listener, reported with `done` once it is over. */
export interface NativeTicket {
  /** The headers of the Deno server's answer, which the listener replaces by its own. */
  readonly headers: Record<string, string>;
  /** Settles when the range is out or cut off (true), or was taken back unsent (false). */
  readonly done: Promise<boolean>;
}

/** A running native GET listener and the objects it serves. */
export class NativeGet implements RelaySink {
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
  /** The secret of requests handed over. */
  readonly #secret: string;
  /** Whether bodies go by ticket only (no object offered). */
  readonly #ticketsOnly: boolean;
  /** Tickets not reported done, by number: what settles them and their claim timer. */
  readonly #tickets = new Map<
    bigint,
    { settle: (sent: boolean) => void; timer: ReturnType<typeof setTimeout> }
  >();
  /** The wait for tickets done, while tickets are out. */
  #waiting: Promise<void> | undefined;
  readonly #maxUploads: number;
  /** Objects still arriving it serves pieces of, each ended once. */
  readonly #relays = new Set<() => void>();

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
    this.#secret = crypto.randomUUID();
    this.#ticketsOnly = options.tickets === true;
    this.#maxUploads = options.maxUploads ?? 0;
    const secret = encoder.encode(this.#secret);
    const bucket = options.tickets === true ? options.bucket : undefined;
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
      secret,
      secret.length,
      bucket?.pointer ?? null,
      BigInt(bucket === undefined ? 0 : sliceOf(bucket.rate)),
      out,
    );
    if (started === -Errno.EADDRINUSE) {
      throw new Deno.errors.AddrInUse(
        `Cannot serve GET natively on ${address}: address in use by another process: choose another port, such as --http-fast ${
          urlHost(hostname, 0)
        } for a free one`,
      );
    }
    if (started === -Errno.EADDRNOTAVAIL) {
      throw new Deno.errors.AddrNotAvailable(
        `Cannot serve GET natively on ${address}: no network interface of this host has that address: give one it has (ip -brief address), or 127.0.0.1`,
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
    (peer as Peer & PartialHolder).relayTo?.(this);
  }

  /**
   * Serves another daemon's ranges (`?local=1`) of the pieces of `id`
   * verified so far, while the object lands in the memfd `fd`: from the
   * listener's own descriptor of it, paced by the upload bucket, while
   * fewer than `maxUploads` bodies are under way there, and refuses one
   * touching a piece not verified yet itself (503 `STORE_UNAVAILABLE`, the
   * Deno server's answer, in no upload slot); every other request for it
   * goes to the Deno server as before. Ends at the seal, a failure or the
   * listener's close.
   *
   * @returns Undefined when the listener cannot take it (closed, out of fds or memory).
   */
  relay(id: string, fd: number, size: number, pieceSize: number): RelayedPieces | undefined {
    const handle = this.#handle;
    if (handle === null || size === 0) return undefined;
    const ids = encoder.encode(id);
    const lines = encoder.encode("content-type: application/octet-stream\r\n");
    const refusal = encoder.encode(errorBody(notInYet(id)));
    const out = new BigUint64Array(1);
    const result = this.#native.symbols.pk_hg_relay_put(
      handle,
      ids,
      ids.length,
      fd,
      BigInt(size),
      BigInt(pieceSize),
      this.#maxUploads,
      lines,
      lines.length,
      refusal,
      refusal.length,
      out,
    );
    if (!this.#took(result, "register an object arriving with the native GET listener")) {
      return undefined;
    }
    let relay: Deno.PointerValue = Deno.UnsafePointer.create(out[0]!);
    const symbols = this.#native.symbols;
    const end = () => {
      if (relay === null) return;
      this.#relays.delete(end);
      symbols.pk_hg_relay_end(handle, relay);
      relay = null;
    };
    this.#relays.add(end);
    return {
      verified: (piece) => {
        if (relay !== null) symbols.pk_hg_relay_verified(relay, piece);
      },
      end,
    };
  }

  /**
   * Begins a read through the Deno server that may end in an offer of its
   * object; pass the watch to {@link NativeGet.offer}, or to
   * {@link NativeGet.unwatch} when nothing is offered.
   */
  watch(id: string): NativeGetWatch | undefined {
    if (this.#served.has(id) || this.#handle === null || this.#ticketsOnly) {
      return undefined;
    }
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
    if (!this.#took(result, "register an object with the native GET listener")) {
      this.#freeSlots.push(slot);
      return;
    }
    this.#slots[slot] = watch.id;
    this.#served.set(watch.id, slot);
  }

  /** Whether it sends bodies by ticket only (with upload limits), offering no object. */
  get tickets(): boolean {
    return this.#ticketsOnly;
  }

  /**
   * Whether `request` came through the listener, which can then send its
   * body by ticket. The Deno server does so for every GET with upload limits
   * ({@link NativeGet.tickets}), and for another daemon's (`?local=1`:
   * pieces, of objects sealed or still arriving) always; a client's GET
   * without limits is answered as usual, its object then offered.
   */
  handedOver(request: Request): boolean {
    return this.#handle !== null && request.headers.get(OFFER_HEADER) === this.#secret;
  }

  /**
   * Hands bytes `start` to `end` (exclusive) of the memfd `fd`, of `size`
   * bytes, to the listener, to send as the body of the answer whose headers
   * are the ticket's: call it only for a request it handed over
   * ({@link NativeGet.handedOver}), and keep the memfd's bytes as they are
   * until `done` settles.
   *
   * @param size The file's length; undefined while unknown (a body still
   *   arriving), when a 206's `Content-Range` gives its total as `*`.
   * @param headers The answer's headers; `content-length` and `content-range` are the listener's.
   * @param partial Whether the answer is 206 with a `Content-Range`, else 200.
   * @returns Undefined when the listener cannot take it (out of fds or memory): answer as usual.
   */
  ticket(
    fd: number,
    size: number | undefined,
    { start, end }: { start: number; end: number },
    partial: boolean,
    headers: Record<string, string>,
  ): NativeTicket | undefined {
    if (this.#handle === null) return undefined;
    let head = "";
    for (const [name, value] of Object.entries(headers)) {
      if (name !== "content-length" && name !== "content-range") head += `${name}: ${value}\r\n`;
    }
    const lines = encoder.encode(head);
    const out = new BigUint64Array(1);
    const result = this.#native.symbols.pk_hg_ticket(
      this.#handle,
      fd,
      BigInt(size ?? end),
      BigInt(start),
      BigInt(end),
      partial ? (size === undefined ? PARTIAL_OPEN : PARTIAL) : WHOLE,
      lines,
      lines.length,
      out,
    );
    if (!this.#took(result, "hand a range to the native GET listener")) return undefined;
    const number = out[0]!;
    const done = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => this.#unclaimed(number), CLAIM_MS);
      Deno.unrefTimer(timer);
      this.#tickets.set(number, { settle: resolve, timer });
    });
    this.#waitDone();
    return { headers: { [TICKET_HEADER]: String(number) }, done };
  }

  /**
   * Whether the listener took what `result` answers for: out of fds or
   * memory is a refusal, counted, and the caller serves through the Deno
   * server; any other error throws.
   */
  #took(result: number, what: string): boolean {
    if (OUT_OF_ROOM.has(result)) {
      this.#refused++;
      return false;
    }
    check(result, what);
    return true;
  }

  /** Takes back a ticket still unclaimed; a claimed one is reported done in time. */
  #unclaimed(number: bigint): void {
    const ticket = this.#tickets.get(number);
    if (ticket === undefined || this.#handle === null) return;
    if (this.#native.symbols.pk_hg_cancel(this.#handle, number) !== 1) return;
    this.#tickets.delete(number);
    ticket.settle(false);
  }

  /** Waits for tickets done on the thread pool while any is out, and settles them. */
  #waitDone(): void {
    if (this.#waiting !== undefined) return;
    const handle = this.#handle;
    if (handle === null) return;
    this.#waiting = (async () => {
      const out = new BigUint64Array(64);
      while (this.#tickets.size > 0 && this.#handle !== null) {
        await this.#native.symbols.pk_hg_wait_done(handle, WAIT_DONE_MS);
        if (this.#handle === null) return;
        for (;;) {
          const count = this.#native.symbols.pk_hg_done(handle, out, out.length);
          for (let i = 0; i < count; i++) this.#settle(out[i]!, true);
          if (count < out.length) break;
        }
      }
    })().finally(() => {
      this.#waiting = undefined;
      // A ticket handed out as the last wait ended needs a wait of its own.
      if (this.#tickets.size > 0) this.#waitDone();
    });
  }

  #settle(number: bigint, sent: boolean): void {
    const ticket = this.#tickets.get(number);
    if (ticket === undefined) return;
    this.#tickets.delete(number);
    clearTimeout(ticket.timer);
    ticket.settle(sent);
  }

  /** What the listener has done so far. */
  counts(): NativeGetCounts {
    const refused = this.#refused;
    if (this.#handle === null) {
      return { served: 0, relayed: 0, bytes: 0, refused, relayServed: 0, relayBodies: 0 };
    }
    const out = new BigUint64Array(5);
    this.#native.symbols.pk_hg_counts(this.#handle, out);
    return {
      served: Number(out[0]),
      relayed: Number(out[1]),
      bytes: Number(out[2]),
      refused,
      relayServed: Number(out[3]),
      relayBodies: Number(out[4]),
    };
  }

  /**
   * Stops the listener, cutting responses under way (their tickets settle
   * as sent), and lets its fds go. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#handle === null) return await this.#waiting;
    clearInterval(this.#toucher);
    this.#stopRemovals();
    (this.#peer as Peer & PartialHolder).relayTo?.(undefined);
    for (const end of [...this.#relays]) end();
    const handle = this.#handle;
    this.#handle = null;
    this.#served.clear();
    this.#watches.clear();
    this.#native.symbols.pk_hg_wake_done(handle);
    await this.#waiting;
    check(this.#native.symbols.pk_hg_close(handle), "stop the native GET listener");
    for (const number of [...this.#tickets.keys()]) this.#settle(number, true);
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
