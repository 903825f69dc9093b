/**
 * One client of a `UdsServer`: its messages cut into frames, its requests
 * started (at most so many at once, with back pressure on the socket), its
 * replies sent, and its leases released when it goes.
 *
 * @module
 */
import { asPackiceError, ProtocolError } from "../../core/errors.ts";
import type { Acquired, Peer } from "../../core/peer.ts";
import { Linux } from "../../native/ffi.ts";
import type { Flusher } from "../../native/schedule.ts";
import { Channel, type ChannelHandler } from "./channel.ts";
import {
  CHUNK,
  decodeAcquire,
  encodeFrame,
  encodeText,
  Flag,
  Frames,
  type Header,
  HEADER_SIZE,
  MAX_MESSAGE,
  NO_FDS,
  Op,
  peekHeader,
  PROTOCOL_VERSION,
  textFrameRoom,
  writeHeader,
  writeTextFrame,
} from "./protocol.ts";
import { RecentTexts } from "./recent_texts.ts";
import { route } from "./router.ts";
import { acquire, releaseOneWay } from "./serve_leases.ts";
import { open, opened, ServerOpens } from "./serve_open.ts";
import { type Served, type ServedBy, ServedPool } from "./served.ts";
import { closeAll, type Context, json, type Session } from "./session.ts";
import { ServerArrivals } from "./serve_arriving.ts";
import type { FastConnection } from "./fast_connection.ts";

/**
 * Slots for the texts a connection used last: room for the lease ids of a
 * client with dozens of gets in flight, each released after the others' grants.
 */
const RECENT_TEXTS = 64;
/** Memfds that may wait for one slow client, each a duplicate held open. */
const MAX_QUEUED_FDS = 1024;

/** One client of a `UdsServer`: its requests, replies and leases. */
export class Connection implements ChannelHandler, Session, ServedBy {
  readonly context: Context;
  readonly peer: Peer;
  readonly channel: Channel;
  readonly leases = new Map<string, Acquired>();
  readonly recent = new RecentTexts(RECENT_TEXTS);
  readonly opens = new ServerOpens();
  readonly arrivals = new ServerArrivals();
  readonly fast: FastConnection | undefined;
  reading = 0;
  readonly #flusher: Flusher;
  readonly #served = new ServedPool(this);
  #inflight = 0;
  /** Frames received but not started yet, while too many are under way. */
  #backlog: { bytes: Uint8Array; fds: number[] } | undefined;
  #closing: Promise<void> | undefined;
  readonly #inflightNow = () => this.#inflight;
  /** After the flush of replies: the backlog resumes, and the JS thread waits for the next request. */
  readonly #flushed = () => {
    if (this.#backlog !== undefined) this.#resume();
    // The client usually sends its next request as soon as it has the reply.
    this.context.reactor.waitSoon();
  };

  constructor(context: Context, fd: number) {
    this.context = context;
    this.peer = context.peer;
    const spill = {
      enqueue: (bytes: Uint8Array, fds: number[]) => this.channel.enqueue(bytes, fds),
    };
    const fast = this.fast = context.fast?.connect(fd, spill, context.metrics);
    try {
      this.channel = new Channel(context.native, context.reactor, fd, this, {
        maxQueuedBytes: context.maxQueuedBytes,
        maxQueuedFds: MAX_QUEUED_FDS,
        pauseWhileQueued: true,
        counters: context.metrics,
        ...(fast === undefined ? {} : { receiver: fast }),
      });
    } catch (error) {
      fast?.close();
      throw error;
    }
    this.#flusher = context.reactor.schedule.flusher(() => this.channel.flush());
    context.log.debug(`Client connected on fd ${fd}`);
  }

  message(bytes: Uint8Array, fds: number[], flags: number): void {
    if (flags & Linux.MSG_TRUNC) {
      // The kernel dropped the rest: answer the first frame, if it has a header.
      closeAll(this, fds);
      const { op, id } = peekHeader(bytes);
      this.#fail(op, id, new ProtocolError(`Message too large: over ${MAX_MESSAGE} bytes`));
    } else if (fds.length === 0 || carriesMemfds(bytes, fds.length)) {
      this.#frames(bytes, fds);
    } else {
      closeAll(this, fds);
      this.#refuseAll(bytes, "Unexpected file descriptors: only ACQUIRE carries any, its memfds");
    }
    this.#scheduleFlush();
  }

  /** Answers every frame of a message with a protocol error. */
  #refuseAll(bytes: Uint8Array, reason: string): void {
    const frames = new Frames(bytes);
    for (let header = frames.next(); header !== undefined; header = frames.next()) {
      if (typeof header === "string") {
        const { op, id } = peekHeader(frames.rest());
        this.#fail(op, id, new ProtocolError(`Malformed frame: ${header}`));
        return;
      }
      if (!(header.flags & Flag.ONE_WAY)) {
        this.#fail(header.op, header.id, new ProtocolError(reason));
      }
    }
  }

  drained(): void {
    this.#resume();
  }

  answered(): void {
    // Answered in C: the client usually sends its next request as soon as it has the replies.
    this.context.reactor.waitSoon();
  }

  /**
   * Starts each frame of a message, handing each ACQUIRE that carries
   * memfds its own from `fds`, in order. Frames beyond what the connection
   * may have under way wait in the backlog with the fds still to come, and
   * reading stops until it is empty again. Fds left over at the end are closed.
   */
  #frames(bytes: Uint8Array, fds: number[]): void {
    const frames = new Frames(bytes, fds);
    try {
      for (;;) {
        if (!this.#mayStart()) {
          const rest = frames.rest();
          if (rest.length === 0) return;
          // The message buffer is reused: keep a copy of the rest.
          this.#backlog = { bytes: rest.slice(), fds: frames.takeRest() };
          this.channel.setReading(false);
          return;
        }
        const header = frames.next();
        if (header === undefined) return;
        if (typeof header === "string") {
          // The framing is lost: answer once and drop the rest of the message.
          const { op, id } = peekHeader(frames.rest());
          this.#fail(op, id, new ProtocolError(`Malformed frame: ${header}`));
          return;
        }
        this.#dispatch(header, frames.body, frames.fds);
      }
    } finally {
      const rest = frames.takeRest();
      if (rest.length > 0) closeAll(this, rest);
    }
  }

  /**
   * Whether another request may start: few enough under way, no replies
   * waiting to go, and room in the send queue for the replies of every READ
   * under way plus one more, so that a client that pipelines the READs of a
   * large object and reads their replies late is slowed down, not cut off.
   */
  #mayStart(): boolean {
    return this.#inflight < this.context.maxInflight && this.channel.queuedBytes === 0 &&
      (this.reading === 0 || this.reading + CHUNK <= this.context.maxQueuedBytes / 2);
  }

  /** Starts frames from the backlog as room frees up, then reads again. */
  #resume(): void {
    if (this.channel.closed || !this.#mayStart()) return;
    const backlog = this.#backlog;
    this.#backlog = undefined;
    if (backlog !== undefined) this.#frames(backlog.bytes, backlog.fds);
    if (this.#backlog === undefined) this.channel.setReading(true);
    this.#scheduleFlush();
  }

  closed(reason: string): void {
    this.context.log.debug(`Client disconnected: ${reason}`);
    if (reason !== "connection closed") {
      this.context.log.warn(`Disconnected a client: ${reason}`);
    }
    void this.#end();
  }

  /** Disconnects the client and releases its leases. */
  close(): Promise<void> {
    this.#closing ??= this.channel.close().then(() => this.#end());
    return this.#closing;
  }

  async #end(): Promise<void> {
    this.context.forget(this);
    this.fast?.close();
    closeAll(this, this.#backlog?.fds ?? []);
    this.#backlog = undefined;
    const leases = [...this.leases.keys()];
    this.leases.clear();
    await Promise.all([
      this.arrivals.close(),
      ...leases.map((lease) => this.peer.release(lease).catch(() => {})),
    ]);
  }

  /** Starts a request; the memfds an ACQUIRE carries are closed unless the peer takes them. */
  #dispatch(header: Header, body: Uint8Array, memfds: number[] = NO_FDS): void {
    const { op, id, flags } = header;
    this.context.metrics.request(op, HEADER_SIZE + header.length);
    if (header.version !== PROTOCOL_VERSION) {
      this.#refuse(
        header,
        memfds,
        new ProtocolError(`Unsupported protocol version: ${header.version}`),
      );
      return;
    }
    if (flags & (Flag.REPLY | Flag.ERROR | Flag.MORE) || header.fds !== memfds.length) {
      this.#refuse(header, memfds, new ProtocolError(`Invalid request flags: ${flags}`));
      return;
    }
    if (op === Op.RELEASE && flags & Flag.ONE_WAY && memfds.length === 0) {
      releaseOneWay(this, body);
      return;
    }
    // Routed in this turn, and ACQUIRE and OPEN push their replies as soon as
    // the peer answers: a get's reply leaves with the flush of the turn its
    // request came in. Keep the path whole: a step between would be a hop.
    const served = this.#served.take(op, id, flags);
    try {
      if (op === Op.OPEN && memfds.length === 0) {
        open(this, served, body).then(served.granted, served.refuse);
      } else {
        const work = memfds.length === 0
          ? route(this, op, id, body, flags)
          : acquire(this, id, decodeAcquire(body), memfds);
        work.then(served.answer, served.refuse);
      }
    } catch (error) {
      this.#served.give(served);
      this.#refuse(header, memfds, error);
      return;
    }
    this.#inflight++;
    this.context.reactor.schedule.busy(1);
  }

  answer(served: Served, reply: Uint8Array | string | undefined): void {
    try {
      if (reply !== undefined && !(served.flags & Flag.ONE_WAY)) {
        this.#reply(served.op, served.id, reply);
      }
    } finally {
      this.#settled(served);
    }
  }

  refuse(served: Served, error: unknown): void {
    try {
      if (!(served.flags & Flag.ONE_WAY)) this.#fail(served.op, served.id, error);
    } finally {
      this.#settled(served);
    }
  }

  granted(served: Served, acquired: Acquired): void {
    try {
      opened(this, served, acquired);
    } catch (error) {
      this.refuse(served, error);
      return;
    }
    this.#settled(served);
  }

  /** Answers a request that did not start with `error`, and closes the memfds it carries. */
  #refuse(header: Header, memfds: readonly number[], error: unknown): void {
    closeAll(this, memfds);
    if (!(header.flags & Flag.ONE_WAY)) this.#fail(header.op, header.id, error);
  }

  /** A request has been answered: the reply may go out, and the next request start. */
  #settled(served: Served): void {
    this.#served.give(served);
    this.#inflight--;
    this.context.reactor.schedule.busy(-1);
    this.#scheduleFlush();
    // Replies waiting for the flush go first: the backlog resumes after it.
    if (this.#backlog !== undefined && !this.channel.pending) this.#resume();
  }

  #reply(op: number, id: number, body: Uint8Array | string): void {
    if (typeof body === "string" && body.length * 3 <= CHUNK) {
      this.#pushText(op, id, Flag.REPLY, body);
    } else if (typeof body === "string") {
      this.#replyChunked(op, id, encodeText(body));
    } else if (body.length > CHUNK) {
      this.#replyChunked(op, id, body);
    } else {
      const into = this.channel.reserve(HEADER_SIZE + body.length);
      writeHeader(into, op, id, Flag.REPLY, body.length, 0);
      if (body.length > 0) into.set(body, HEADER_SIZE);
      this.channel.commit(into, HEADER_SIZE + body.length);
    }
  }

  #replyChunked(op: number, id: number, body: Uint8Array): void {
    for (let at = 0; at < body.length || at === 0; at += CHUNK) {
      const end = Math.min(at + CHUNK, body.length);
      const more = end < body.length ? Flag.MORE : 0;
      this.channel.push(encodeFrame(op, id, Flag.REPLY | more, body.subarray(at, end)));
      if (end === body.length) break;
    }
  }

  #fail(op: number, id: number, error: unknown): void {
    this.context.metrics.error(op);
    const { code, message } = asPackiceError(error);
    this.#pushText(op, id, Flag.REPLY | Flag.ERROR, json({ code, message }));
  }

  #pushText(op: number, id: number, flags: number, text: string): void {
    const into = this.channel.reserve(textFrameRoom(text));
    this.channel.commit(into, writeTextFrame(into, op, id, flags, text));
  }

  /**
   * Sends the replies gathered so far once the requests of this turn have
   * settled, so that pipelined requests get their replies in one message.
   */
  #scheduleFlush(): void {
    if (!this.channel.pending) return;
    this.#flusher.whenSettled(this.#inflightNow, this.#flushed);
  }
}

/**
 * Whether the fds of a message are the memfds of its ACQUIRE frames, as
 * many in all as came: no other frame may carry any.
 */
function carriesMemfds(bytes: Uint8Array, count: number): boolean {
  const frames = new Frames(bytes);
  let claimed = 0;
  for (let header = frames.next(); header !== undefined; header = frames.next()) {
    if (typeof header === "string") return false;
    if (header.fds !== 0 && header.op !== Op.ACQUIRE) return false;
    claimed += header.fds;
  }
  return claimed === count;
}
