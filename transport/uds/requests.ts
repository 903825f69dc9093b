/**
 * The client side's requests on one connection: ids, replies matched to
 * them (with the fds they carry), time-outs, and the leases granted by
 * replies that come after their time-out, released at once.
 *
 * @module
 */
import {
  ClosedError,
  errorFromCode,
  ProtocolError,
  StoreUnavailableError,
} from "../../core/errors.ts";
import { Linux } from "../../native/ffi.ts";
import type { Native } from "../../native/load.ts";
import type { Reactor } from "../../native/reactor.ts";
import type { Flusher } from "../../native/schedule.ts";
import type { Channel } from "./channel.ts";
import { PendingTable } from "./pending_table.ts";
import { decodeOpenReply } from "./open_frame.ts";
import {
  type AcquireReply,
  decodeJson,
  encodeFrame,
  Flag,
  Frames,
  type Header,
  NO_FDS,
  Op,
  textFrameRoom,
  writeTextFrame,
} from "./protocol.ts";

const EMPTY = new Uint8Array(0);

/** How often requests are checked for time-outs, in milliseconds. */
const SWEEP_MS = 100;

/** Decodes a reply body (valid only during the call) and the fds that came with it. */
export type Decode<T> = (body: Uint8Array, fds: number[]) => T;

/** A whole request frame, written in place for a request id. */
export interface Built {
  /** The most bytes the frame takes. */
  readonly room: number;
  /** Writes the frame into `into` from `at`; returns its length. */
  write(into: Uint8Array, id: number, at: number): number;
}

/** A request body: bytes, a string (an id, or JSON) to encode straight into the frame, or a whole frame. */
export type Body = Uint8Array | string | Built;

/** Sends a request and resolves with its decoded reply. */
export type Call = <T>(op: number, body: Body, decode: Decode<T>) => Promise<T>;

/** What a 0-length reply decodes to. */
export const none: Decode<void> = () => {};

/**
 * A request waiting for its reply. Most are made by {@link Requests.call};
 * a caller with state of its own to carry (the OPEN of a get) makes one
 * object that is its pending request, its frame and its reply's handler,
 * and sends it with {@link Requests.send}.
 */
export interface Pending {
  readonly op: number;
  /** The time-out sweep during which the request was sent: a clock without a call per request. */
  sentInSweep: number;
  /** Whether {@link Pending.settle} takes over the fds of the reply; otherwise they are closed. */
  readonly takesFds: boolean;
  /** Earlier parts of a reply split with {@link Flag.MORE}. */
  parts?: Uint8Array[];
  /** Takes the reply's body (valid only during the call) and, if it takes them, its fds. */
  settle(body: Uint8Array, fds: number[]): void;
  /**
   * As {@link Pending.settle}, with the body given as the bytes of `message`
   * from `from` to `to`, with no view of them made; optional.
   */
  settleIn?(message: Uint8Array, from: number, to: number, fds: number[]): void;
  /** The request failed: an error reply, a time-out or the connection's end. */
  fail(error: Error): void;
}

/** A request of {@link Requests.call}: its reply decoded settles a promise. */
class Decoded<T> implements Pending {
  readonly op: number;
  sentInSweep = 0;
  readonly takesFds: boolean;
  parts?: Uint8Array[];
  readonly #decode: Decode<T>;
  readonly #resolve: (value: T | Promise<T>) => void;
  readonly #reject: (error: Error) => void;
  readonly #recover: Recover<T> | undefined;

  constructor(
    op: number,
    decode: Decode<T>,
    resolve: (value: T | Promise<T>) => void,
    reject: (error: Error) => void,
    recover: Recover<T> | undefined,
  ) {
    this.op = op;
    this.takesFds = op === Op.ACQUIRE || op === Op.OPEN;
    this.#decode = decode;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#recover = recover;
  }

  settle(body: Uint8Array, fds: number[]): void {
    let value: T;
    try {
      value = this.#decode(body, fds);
    } catch (error) {
      this.#reject(error as Error);
      return;
    }
    this.#resolve(value);
  }

  fail(error: Error): void {
    const again = this.#recover?.(error);
    if (again === undefined) this.#reject(error);
    else this.#resolve(again);
  }
}

/** Settles a failed request another way, or returns undefined to fail it with the error. */
export type Recover<T> = (error: Error) => Promise<T> | undefined;

/** Errors the daemon sent in reply, as opposed to those of this side. */
const fromDaemon = new WeakSet<Error>();

/**
 * Whether `error` is one the daemon replied with.
 *
 * @param error An error a request failed with.
 */
export function isFromDaemon(error: unknown): boolean {
  return error instanceof Error && fromDaemon.has(error);
}

/** What {@link Requests} needs from its connection. */
export interface RequestsOptions {
  readonly native: Native;
  readonly reactor: Reactor;
  readonly channel: Channel;
  /** The socket path, for messages. */
  readonly path: string;
  /** How long a request waits for its reply, in milliseconds; 0 for ever. */
  readonly timeout: number;
  /** Ends the connection when a reply cannot be framed. */
  fail(reason: string): void;
}

/**
 * The requests of one connection and their replies. Requests made in the
 * same turn leave in one message at its end (see `Schedule`). A request is
 * written straight into the channel and a reply settles its request from
 * the message handler: the round trip of a get runs through this class
 * whole, with no step between that would cost it a hop.
 */
export class Requests {
  readonly #native: Native;
  readonly #reactor: Reactor;
  readonly #channel: Channel;
  readonly #flusher: Flusher;
  readonly #path: string;
  readonly #timeout: number;
  readonly #failConnection: (reason: string) => void;
  readonly #pending = new PendingTable<Pending>();
  /** Walks the frames of each reply message. */
  readonly #frames = new Frames(new Uint8Array(0));
  /** ACQUIRE and OPEN requests given up on, whose late replies would grant leases to release. */
  readonly #abandoned = new Set<number>();
  #nextId = 1;
  #closedReason: string | undefined;
  /** After the flush of requests: the JS thread waits for their replies itself. */
  readonly #flushed = () => {
    if (this.#pending.size > 0) this.#reactor.waitSoon();
  };

  constructor(options: RequestsOptions) {
    this.#native = options.native;
    this.#reactor = options.reactor;
    this.#channel = options.channel;
    this.#path = options.path;
    this.#timeout = options.timeout;
    this.#failConnection = options.fail;
    this.#flusher = options.reactor.schedule.flusher(() => options.channel.flush());
    if (this.#timeout > 0) Requests.#watch(this);
  }

  /**
   * Sends a request and waits for its reply. A request with a memfd (a
   * CREATE that hands it over) leaves at once, not at the end of the turn,
   * so that its caller can fill the memfd while it travels. `recover` may
   * settle a request that failed another way.
   */
  call<T>(
    op: number,
    body: Body,
    decode: Decode<T>,
    memfd?: number,
    recover?: Recover<T>,
  ): Promise<T> {
    if (this.#closedReason !== undefined) return Promise.reject(this.closedError());
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    try {
      this.send(new Decoded(op, decode, resolve, reject, recover), body, memfd);
    } catch (error) {
      return Promise.reject(error);
    }
    return promise;
  }

  /**
   * Sends a request whose reply settles `pending`, a request the caller
   * made (see {@link Pending}); on a closed connection it fails at once.
   */
  send(pending: Pending, body: Body, memfd?: number): void {
    if (this.#closedReason !== undefined) {
      pending.fail(this.closedError());
      return;
    }
    const id = this.#nextId;
    this.#nextId = id === 0xffff_ffff ? 1 : id + 1;
    pending.sentInSweep = Requests.#sweeps;
    this.#pending.set(id, pending);
    try {
      this.#send(pending.op, id, 0, body, memfd);
    } catch (error) {
      // Never sent (a frame too large): nothing will answer it.
      this.#pending.delete(id);
      throw error;
    }
    if (memfd !== undefined) this.#channel.flush();
  }

  /** Ends a lease on the daemon without waiting: nobody waits for a one-way request. */
  release(leaseId: string): void {
    this.#send(Op.RELEASE, 0, Flag.ONE_WAY, leaseId);
  }

  #send(op: number, id: number, flags: number, body: Body, memfd?: number): void {
    const fds = memfd === undefined ? NO_FDS : [memfd];
    const channel = this.#channel;
    if (body instanceof Uint8Array) {
      channel.push(encodeFrame(op, id, flags, body, fds.length), fds);
    } else {
      // Built in place in the channel's memory, with no view of it made, where it fits.
      const text = typeof body === "string";
      const room = text ? textFrameRoom(body) : body.room;
      const at = channel.reserveAt(room);
      const into = at < 0 ? channel.reserve(room) : channel.arena;
      const from = at < 0 ? 0 : at;
      const length = text
        ? writeTextFrame(into, op, id, flags, body, fds.length, from)
        : body.write(into, id, from);
      if (at < 0) channel.commit(into, length, fds);
      else channel.commitAt(length, fds);
    }
    if (flags & Flag.ONE_WAY) this.#flusher.nextTurn();
    else this.#flusher.endOfTurn(this.#flushed);
  }

  /** Handles a message from the daemon: each frame settles its request. */
  message(bytes: Uint8Array, fds: number[], flags: number): void {
    this.messageIn(bytes, bytes.length, fds, flags);
  }

  /** As {@link Requests.message}, of the first `length` bytes of `buffer`. */
  messageIn(buffer: Uint8Array, length: number, fds: number[], flags: number): void {
    const symbols = this.#native.symbols;
    const lost = flags & (Linux.MSG_TRUNC | Linux.MSG_CTRUNC);
    const frames = this.#frames.reset(buffer, fds, length);
    try {
      for (let header = frames.next(); header !== undefined; header = frames.next()) {
        if (typeof header === "string") {
          this.#failConnection(`malformed reply: ${header}`);
          return;
        }
        const frameFds = frames.fds;
        const pending = this.#pending.get(header.id);
        if (pending === undefined || !(header.flags & Flag.REPLY)) {
          closeAll(symbols, frameFds);
          if (this.#abandoned.delete(header.id)) this.#releaseLate(header, frames.body);
          continue;
        }
        if (header.flags & Flag.MORE) {
          closeAll(symbols, frameFds);
          (pending.parts ??= []).push(frames.body.slice());
          continue;
        }
        this.#pending.delete(header.id);
        const failed = header.flags & Flag.ERROR || lost || frameFds.length !== header.fds;
        if (failed || !pending.takesFds) {
          closeAll(symbols, frameFds);
        }
        if (header.flags & Flag.ERROR) {
          pending.fail(remoteError(frames.body));
        } else if (failed) {
          pending.fail(new ProtocolError("Reply truncated: the message or its fds were cut"));
        } else if (pending.parts === undefined && pending.settleIn !== undefined) {
          pending.settleIn(buffer, frames.start, frames.end, frameFds);
        } else {
          pending.settle(joined(pending.parts, frames.body), frameFds);
        }
      }
    } finally {
      closeAll(symbols, frames.takeRest());
      // The message's buffer is reused: the walker lets go of it.
      frames.reset(EMPTY);
    }
  }

  /** Fails every request under way, and those to come, with a {@link ClosedError}. */
  close(reason: string): void {
    if (this.#closedReason !== undefined) return;
    this.#closedReason = reason;
    Requests.#unwatch(this);
    this.#abandoned.clear();
    const error = this.closedError();
    const pending = [...this.#pending.entries()];
    this.#pending.clear();
    for (const [, request] of pending) request.fail(error);
  }

  /** Why the connection ended, or undefined while it is open. */
  get closedReason(): string | undefined {
    return this.#closedReason;
  }

  /** The error of a request on an ended connection. */
  closedError(): ClosedError {
    return new ClosedError(this.#closedReason ?? "Connection closed");
  }

  /** Connections whose requests time out, all checked by one timer. */
  static readonly #timed = new Set<Requests>();
  static #sweeper: ReturnType<typeof setInterval> | undefined;
  /** Time-out sweeps so far: a request sent during sweep n is at least (m - n - 1) sweeps old at sweep m. */
  static #sweeps = 0;

  /**
   * Checks `requests` for time-outs from now on. One timer serves every
   * connection: setting a timer costs more than a request, and a process
   * may hold a thousand idle connections.
   */
  static #watch(requests: Requests): void {
    Requests.#timed.add(requests);
    if (Requests.#sweeper !== undefined) return;
    const sweeper = Requests.#sweeper = setInterval(() => {
      Requests.#sweeps++;
      for (const timed of Requests.#timed) timed.#expire();
    }, SWEEP_MS);
    Deno.unrefTimer(sweeper);
  }

  static #unwatch(requests: Requests): void {
    if (!Requests.#timed.delete(requests) || Requests.#timed.size > 0) return;
    clearInterval(Requests.#sweeper);
    Requests.#sweeper = undefined;
  }

  /** Fails the requests that have waited longer than the timeout. */
  #expire(): void {
    if (this.#pending.size === 0) return;
    this.#pending.forEach(this.#expireOne);
  }

  /** Fails `pending`, under `id`, if it has waited longer than the timeout. */
  readonly #expireOne = (pending: Pending, id: number): void => {
    // A read-through lasts as long as its download: the socket closing ends it.
    if (pending.op === Op.FETCH) return;
    if ((Requests.#sweeps - pending.sentInSweep - 1) * SWEEP_MS < this.#timeout) return;
    this.#pending.delete(id);
    if (pending.op === Op.ACQUIRE || pending.op === Op.OPEN) this.#abandoned.add(id);
    pending.fail(
      new StoreUnavailableError(`No reply from ${this.#path} within ${this.#timeout} ms`),
    );
  };

  /** Releases the lease a reply to an abandoned ACQUIRE or OPEN granted, if it granted one. */
  #releaseLate(header: Header, body: Uint8Array): void {
    if (!(header.flags & Flag.REPLY) || header.flags & (Flag.ERROR | Flag.MORE)) return;
    let lease: unknown;
    try {
      lease = header.op === Op.OPEN
        ? decodeOpenReply(body)?.leaseId
        : (decodeJson(body) as AcquireReply).lease?.id;
    } catch {
      return;
    }
    if (typeof lease === "string") this.release(lease);
  }
}

/** Closes fds nobody takes; an indexed loop, as this runs for each reply. */
function closeAll(symbols: Native["symbols"], fds: readonly number[]): void {
  for (let i = 0; i < fds.length; i++) symbols.pk_close(fds[i]!);
}

function joined(parts: Uint8Array[] | undefined, last: Uint8Array): Uint8Array {
  if (parts === undefined) return last;
  const total = parts.reduce((sum, part) => sum + part.length, last.length);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const part of [...parts, last]) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

function remoteError(body: Uint8Array): Error {
  try {
    const { code, message } = decodeJson(body) as { code: unknown; message: unknown };
    if (typeof code === "string" && typeof message === "string") {
      const error = errorFromCode(code, message);
      fromDaemon.add(error);
      return error;
    }
  } catch {
    // Not JSON: described below.
  }
  return new ProtocolError("Malformed error reply");
}
