import { Errno, errnoError } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import type { Native } from "../../native/load.ts";
import type { ByteCounters } from "./metrics.ts";
import { MAX_FDS, MAX_MESSAGE, NO_FDS } from "./protocol.ts";
import type { Reactor, Ready, Together } from "../../native/reactor.ts";

/** What a {@link Channel} tells its owner. */
export interface ChannelHandler {
  /**
   * One received message. `bytes` is valid only during the call (the buffer
   * is reused); `fds` are now owned by the handler, which must close them.
   * `flags` has `MSG_TRUNC` when the message was longer than the buffer and
   * `MSG_CTRUNC` when descriptors were dropped.
   */
  message(bytes: Uint8Array, fds: number[], flags: number): void;
  /**
   * As {@link ChannelHandler.message}, with the message given as the first
   * `length` bytes of `buffer`, so that no view of it is made; optional,
   * used instead of `message` when present.
   */
  messageIn?(buffer: Uint8Array, length: number, fds: number[], flags: number): void;
  /** The connection ended: the other side closed, an error, or overflow. Called once. */
  closed(reason: string): void;
  /** Everything queued has been sent; optional. */
  drained?(): void;
  /** Every frame of a message was answered by the channel's {@link Receiver}; optional. */
  answered?(): void;
}

/** Options of {@link Channel}. */
export interface ChannelOptions {
  /** Bytes that may wait in the send queue before the channel gives up. */
  readonly maxQueuedBytes: number;
  /** File descriptors that may wait in the send queue (each a duplicate) before it gives up. */
  readonly maxQueuedFds?: number;
  /**
   * Stop reading while messages wait for the peer to read, so a peer that
   * sends faster than it reads is slowed instead of growing the queue. For
   * servers; a client must keep reading its replies.
   */
  readonly pauseWhileQueued?: boolean;
  /** Where to count the bytes sent and received; optional. */
  readonly counters?: ByteCounters;
  /** Receives each message instead of a plain `recvmsg`, answering some frames itself. */
  readonly receiver?: Receiver;
}

/**
 * A receive that may answer some frames of a message itself (the server's
 * native fast path): it receives as `pk_recvmsg` does, and leaves the other
 * frames, in their order, in the first {@link Receiver.kept} bytes of the
 * buffer for the handler.
 */
export interface Receiver {
  /** Receives one message; returns what `pk_recvmsg` returns. */
  receive(
    buffer: Uint8Array,
    capacity: bigint,
    fds: Int32Array,
    maxFds: number,
    count: Int32Array,
    flags: Int32Array,
  ): number;
  /** Bytes of the frames left to the handler, at the buffer's start, of the message received last. */
  readonly kept: number;
  /** Receivers that take a message each of many channels in one call; optional. */
  readonly group?: ReceiverGroup;
}

/**
 * Receivers whose receives of several channels' messages are made in one
 * call (the server's native fast path, for the many sockets a wait finds
 * ready at once): to the reactor, a {@link Together} of those channels.
 */
export abstract class ReceiverGroup implements Together {
  /**
   * Whether the last {@link ReceiverGroup.receiveEach} left the message of
   * the last receiver it went through (some of its frames, its fds, the
   * connection's end or an error) to its handler, with
   * {@link ReceiverGroup.leftResult} as its result.
   */
  leftToHandler = false;
  /** What the receive of the message left to its handler returned, as `pk_recvmsg` returns. */
  leftResult = 0;

  /**
   * Receives one message on each of the first `count` of `members`, in
   * their order, as each one's {@link Receiver.receive} would, counting the
   * bytes of the messages answered whole as their channels' counters would;
   * it stops after one whose message is left to its handler (see
   * {@link ReceiverGroup.leftToHandler}), whose {@link Receiver.kept} it sets.
   *
   * @returns How many receivers it went through: at least one.
   */
  abstract receiveEach(
    members: readonly Receiver[],
    count: number,
    buffer: Uint8Array,
    capacity: bigint,
    fds: Int32Array,
    maxFds: number,
    countOut: Int32Array,
    flags: Int32Array,
  ): number;

  readyAll(handlers: readonly Ready[], count: number): void {
    Channel.receiveTogether(this, handlers as readonly Channel[], count);
  }
}

interface Queued {
  readonly bytes: Uint8Array;
  /** Duplicates, owned by the queue until sent. */
  readonly fds: number[];
}

/** Buffers shared by every channel: each is used only within one synchronous call. */
interface Scratch {
  readonly receive: Uint8Array;
  readonly send: Uint8Array;
  readonly fdsIn: Int32Array;
  readonly fdsOut: Int32Array;
  readonly count: Int32Array;
  readonly flags: Int32Array;
}

let scratch: Scratch | undefined;

function scratchBuffers(): Scratch {
  scratch ??= {
    receive: new Uint8Array(MAX_MESSAGE),
    send: new Uint8Array(MAX_MESSAGE),
    fdsIn: new Int32Array(MAX_FDS),
    fdsOut: new Int32Array(MAX_FDS),
    count: new Int32Array(1),
    flags: new Int32Array(1),
  };
  return scratch;
}

const IN = Linux.EPOLLIN | Linux.EPOLLRDHUP;
const RECEIVE_CAPACITY = BigInt(MAX_MESSAGE);
const OUT = Linux.EPOLLOUT;
const CLOSING = Linux.EPOLLHUP | Linux.EPOLLERR;
/** Messages read per readiness event, so one busy peer cannot starve the rest. */
const READ_BUDGET = 64;
/** Bytes of frames built in place between flushes, per channel. */
const ARENA_BYTES = 8 * 1024;
const EMPTY = new Uint8Array(0);
/** The receivers of one call of {@link ReceiverGroup.receiveEach}, reused. */
const members: Receiver[] = [];

/**
 * One connected `SOCK_SEQPACKET` socket on the {@link Reactor}: frames queued
 * with {@link Channel.push} go out together on {@link Channel.flush} as few
 * messages as fit, received messages go to the handler. Every socket call is
 * synchronous and non-blocking; when the peer's buffer is full, messages wait
 * in a bounded queue until the socket is writable again, and a peer that lets
 * the queue overflow is disconnected.
 */
export class Channel {
  readonly #native: Native;
  readonly #reactor: Reactor;
  readonly #fd: number;
  readonly #token: number;
  readonly #handler: ChannelHandler;
  readonly #maxQueued: number;
  readonly #maxQueuedFds: number;
  readonly #pauseWhileQueued: boolean;
  readonly #counters: ByteCounters;
  readonly #receiver: Receiver | undefined;
  /**
   * Frames pushed since the last flush: each one's bytes (maybe longer than
   * the frame), where in them it starts, its length and fds. The arrays are
   * reused from flush to flush.
   */
  readonly #frames: Uint8Array[] = [];
  readonly #offsets: number[] = [];
  readonly #lengths: number[] = [];
  readonly #frameFds: (readonly number[])[] = [];
  #count = 0;
  /**
   * Where {@link Channel.reserve} builds frames: a new array costs
   * more than encoding a reply. Reused once they are flushed.
   */
  #arena: Uint8Array | undefined;
  #arenaUsed = 0;
  /**
   * Bytes of the next arena: more, up to a message, once the frames of a
   * flush did not fit, so that a connection that sends much between flushes
   * (pipelined puts) builds them all in place.
   */
  #arenaSize = ARENA_BYTES;
  /** Bytes of the frames pushed since the last flush. */
  #pushedBytes = 0;
  /**
   * Whether every frame since the last flush was built in the arena, one
   * after the other from its start: then the arena is the message, sent as
   * it is, with no copy.
   */
  #inArena = true;
  /** Messages that met a full socket, oldest first. */
  #queue: Queued[] = [];
  #queuedBytes = 0;
  #queuedFds = 0;
  /** Whether the owner wants input; see {@link Channel.setReading}. */
  #wanted = true;
  #closed = false;
  #removed: Promise<void> | undefined;

  /**
   * Takes over a connected non-blocking socket and registers it.
   *
   * @param native The native library.
   * @param reactor The process's reactor.
   * @param fd The socket; the channel closes it.
   * @param handler Where messages and the end go.
   * @param options Queue bounds and back pressure.
   */
  constructor(
    native: Native,
    reactor: Reactor,
    fd: number,
    handler: ChannelHandler,
    options: ChannelOptions,
  ) {
    this.#native = native;
    this.#reactor = reactor;
    this.#fd = fd;
    this.#handler = handler;
    this.#maxQueued = options.maxQueuedBytes;
    this.#maxQueuedFds = options.maxQueuedFds ?? Number.MAX_SAFE_INTEGER;
    this.#pauseWhileQueued = options.pauseWhileQueued ?? false;
    this.#counters = options.counters ?? { sent: 0, received: 0 };
    this.#receiver = options.receiver;
    this.#token = reactor.adopt(fd, IN, this);
  }

  /** Whether the channel has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes waiting for the socket to become writable. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Adds a frame to the next message. The fds must stay open until
   * {@link Channel.flush}, which copies them to the kernel (or duplicates them
   * into the queue).
   */
  push(frame: Uint8Array, fds: readonly number[] = NO_FDS): void {
    this.#add(frame, 0, frame.length, fds);
    this.#inArena = false;
  }

  #add(bytes: Uint8Array, offset: number, length: number, fds: readonly number[]): void {
    if (this.#closed) return;
    const at = this.#count++;
    // A reactor wait lets the flush of these frames go first.
    if (at === 0) this.#reactor.schedule.busy(1);
    this.#frames[at] = bytes;
    this.#offsets[at] = offset;
    this.#lengths[at] = length;
    this.#frameFds[at] = fds;
    this.#pushedBytes += length;
  }

  /**
   * Room for a frame of at most `room` bytes, to write and then hand to
   * {@link Channel.commit} before anything else is pushed: in this
   * channel's own memory when it fits there until the next flush, else in
   * a new array.
   *
   * @param room The most bytes the frame takes.
   * @returns Where to write the frame.
   */
  reserve(room: number): Uint8Array {
    const at = this.#arenaUsed;
    if (this.#closed || room > this.#arenaSize - at) return new Uint8Array(room);
    this.#arena ??= new Uint8Array(this.#arenaSize);
    return this.#arena.subarray(at, at + room);
  }

  /**
   * Adds the frame written into `into`, from {@link Channel.reserve}.
   *
   * @param into What {@link Channel.reserve} returned.
   * @param length The frame's length.
   * @param fds As for {@link Channel.push}.
   */
  commit(into: Uint8Array, length: number, fds: readonly number[] = NO_FDS): void {
    if (this.#closed) return;
    if (into.buffer === this.#arena?.buffer && into.byteOffset === this.#arenaUsed) {
      this.#arenaUsed += length;
    } else {
      this.#inArena = false;
    }
    this.#add(into, 0, length, fds);
  }

  /**
   * Where to build a frame of at most `room` bytes in this channel's own
   * memory, {@link Channel.arena}, with no view of it to make: the offset
   * to write it from, then hand it to {@link Channel.commitAt} before
   * anything else is pushed; -1 when it does not fit there until the next
   * flush (use {@link Channel.reserve}).
   *
   * @param room The most bytes the frame takes.
   * @returns The offset in {@link Channel.arena}, or -1.
   */
  reserveAt(room: number): number {
    const at = this.#arenaUsed;
    if (this.#closed || room > this.#arenaSize - at) return -1;
    this.#arena ??= new Uint8Array(this.#arenaSize);
    return at;
  }

  /** Where {@link Channel.reserveAt} makes room: valid until the next flush. */
  get arena(): Uint8Array {
    return this.#arena ?? EMPTY;
  }

  /**
   * Adds the frame written at the offset {@link Channel.reserveAt} returned.
   *
   * @param length The frame's length.
   * @param fds As for {@link Channel.push}.
   */
  commitAt(length: number, fds: readonly number[] = NO_FDS): void {
    if (this.#closed) return;
    const at = this.#arenaUsed;
    this.#arenaUsed += length;
    this.#add(this.#arena!, at, length, fds);
  }

  /** Whether frames are waiting for {@link Channel.flush}. */
  get pending(): boolean {
    return this.#count > 0;
  }

  /** Sends every pushed frame, packed into as few messages as fit. */
  flush(): void {
    const count = this.#count;
    if (count === 0) return;
    this.#reactor.schedule.busy(-1);
    this.#count = 0;
    const inArena = this.#inArena;
    this.#inArena = true;
    if (this.#closed) return;
    const frames = this.#frames;
    const offsets = this.#offsets;
    const lengths = this.#lengths;
    const frameFds = this.#frameFds;
    const { send, fdsOut } = scratchBuffers();
    let fdCount = 0;
    for (let i = 0; i < count; i++) fdCount += frameFds[i]!.length;
    if (inArena && fdCount <= MAX_FDS) {
      // The frames lie one after the other in the arena: it is the message.
      fdCount = 0;
      for (let i = 0; i < count; i++) {
        const fds = frameFds[i]!;
        for (let f = 0; f < fds.length; f++) fdsOut[fdCount++] = fds[f]!;
      }
      this.#sendOrQueue(this.#arena!, this.#arenaUsed, fdsOut, fdCount);
    } else {
      this.#pack(frames, offsets, lengths, frameFds, count, send, fdsOut);
    }
    if (this.#closed) return;
    frames.fill(EMPTY, 0, count);
    frameFds.fill(NO_FDS, 0, count);
    // Sent, or copied into the queue: the arena is free again.
    this.#arenaUsed = 0;
    const pushed = this.#pushedBytes;
    this.#pushedBytes = 0;
    if (pushed > this.#arenaSize && this.#arenaSize < MAX_MESSAGE) {
      // These frames did not fit: the next arena holds as many.
      while (this.#arenaSize < pushed && this.#arenaSize < MAX_MESSAGE) this.#arenaSize *= 2;
      this.#arenaSize = Math.min(this.#arenaSize, MAX_MESSAGE);
      this.#arena = undefined;
    }
  }

  /** Packs frames into as few messages as fit, copying them into `send`. */
  #pack(
    frames: readonly Uint8Array[],
    offsets: readonly number[],
    lengths: readonly number[],
    frameFds: readonly (readonly number[])[],
    count: number,
    send: Uint8Array,
    fdsOut: Int32Array,
  ): void {
    let length = 0;
    let fdCount = 0;
    let only: Uint8Array | undefined;
    for (let i = 0; i < count; i++) {
      const offset = offsets[i]!;
      const frameLength = lengths[i]!;
      const frame = offset === 0 ? frames[i]! : frames[i]!.subarray(offset, offset + frameLength);
      const fds = frameFds[i]!;
      if (
        length > 0 && (length + frameLength > MAX_MESSAGE || fdCount + fds.length > MAX_FDS)
      ) {
        this.#sendOrQueue(only ?? send, length, fdsOut, fdCount);
        if (this.#closed) return;
        length = fdCount = 0;
        only = undefined;
      }
      if (length === 0) {
        only = frame;
      } else {
        if (only !== undefined) send.set(only.subarray(0, length), 0);
        only = undefined;
        send.set(frameLength === frame.length ? frame : frame.subarray(0, frameLength), length);
      }
      length += frameLength;
      for (let f = 0; f < fds.length; f++) fdsOut[fdCount++] = fds[f]!;
    }
    this.#sendOrQueue(only ?? send, length, fdsOut, fdCount);
  }

  /** Stops or resumes reading, for back pressure. */
  setReading(on: boolean): void {
    if (this.#closed || this.#wanted === on) return;
    this.#wanted = on;
    this.#watch();
  }

  /** Whether input is read now: the owner wants it, and nothing waits to go out if that pauses it. */
  get #reading(): boolean {
    return this.#wanted && !(this.#pauseWhileQueued && this.#queue.length > 0);
  }

  /**
   * Closes the socket and drops what is queued. The handler's
   * {@link ChannelHandler.closed} is not called for a close asked for here.
   * Settles when the reactor has let go of the socket.
   */
  close(): Promise<void> {
    if (!this.#closed) this.#end();
    return this.#removed ?? Promise.resolve();
  }

  /**
   * The group this channel's messages are received with, while it reads
   * them: runs of its members that a wait finds readable together go to it
   * in one call.
   */
  get together(): Together | undefined {
    return this.#closed || !this.#reading ? undefined : this.#receiver?.group;
  }

  /**
   * Receives one message on each of the first `count` of `channels` (found
   * readable together, members of `group`), in their order, through calls of
   * `group` that each go through many; a message left to its handler, or the
   * end, reaches it as {@link Channel.ready} would have it.
   */
  static receiveTogether(group: ReceiverGroup, channels: readonly Channel[], count: number): void {
    const { receive, fdsIn, count: received, flags } = scratchBuffers();
    let at = 0;
    while (at < count) {
      // Handlers run between calls: whether each still reads is read again before each.
      let n = 0;
      while (at + n < count) {
        const channel = channels[at + n]!;
        const receiver = channel.#receiver;
        if (channel.#closed || !channel.#reading || receiver?.group !== group) break;
        members[n++] = receiver;
      }
      if (n === 0) {
        channels[at++]!.ready(Linux.EPOLLIN);
        continue;
      }
      const done = group.receiveEach(
        members,
        n,
        receive,
        RECEIVE_CAPACITY,
        fdsIn,
        MAX_FDS,
        received,
        flags,
      );
      const left = group.leftToHandler;
      for (let i = 0; i < (left ? done - 1 : done); i++) channels[at + i]!.#handler.answered?.();
      if (left) channels[at + done - 1]!.#take(group.leftResult);
      at += done;
    }
    members.length = 0;
  }

  ready(events: number): void {
    if (this.#closed) return;
    if (events & OUT) this.#drain();
    if (this.#closed) return;
    if (events & Linux.EPOLLIN && this.#reading) this.#receive();
    else if (events & CLOSING) this.#fail("connection closed");
  }

  #receive(): void {
    const symbols = this.#native.symbols;
    const { receive, fdsIn, count, flags } = scratchBuffers();
    const receiver = this.#receiver;
    for (let budget = READ_BUDGET; budget > 0 && this.#reading; budget--) {
      const result = receiver === undefined
        ? Number(
          symbols.pk_recvmsg(this.#fd, receive, RECEIVE_CAPACITY, fdsIn, MAX_FDS, count, flags),
        )
        : receiver.receive(receive, RECEIVE_CAPACITY, fdsIn, MAX_FDS, count, flags);
      if (result === -Errno.EAGAIN) return;
      this.#take(result);
      // The next wait reports the rest, without a read that finds nothing.
      if (this.#closed || this.#reactor.pollingHere) return;
    }
  }

  /**
   * Hands the message just received into the scratch buffers (`result` as
   * `pk_recvmsg` returns, not `-EAGAIN`) to the handler, or ends the channel.
   */
  #take(result: number): void {
    const { receive, fdsIn, count, flags } = scratchBuffers();
    if (this.#closed) {
      // Ended meanwhile, by a handler of a channel received with it: what came goes.
      for (let i = 0; result > 0 && i < count[0]!; i++) this.#native.symbols.pk_close(fdsIn[i]!);
      return;
    }
    if (result <= 0) {
      // A message of no bytes reads as the end of the connection: its fds are closed with it.
      // (A failed read sets no count.)
      if (result === 0) {
        for (let i = 0; i < count[0]!; i++) this.#native.symbols.pk_close(fdsIn[i]!);
      }
      this.#fail(
        result === 0 || gone(-result)
          ? "connection closed"
          : errnoError(-result, "recvmsg").message,
      );
      return;
    }
    this.#counters.received += result;
    const received = count[0]!;
    const fds: number[] = received === 0 ? NO_FDS : [];
    for (let i = 0; i < received; i++) fds.push(fdsIn[i]!);
    const receiver = this.#receiver;
    const length = receiver === undefined ? result : receiver.kept;
    // Every frame answered by the receiver: nothing for the handler.
    if (length === 0) this.#handler.answered?.();
    else if (this.#handler.messageIn) this.#handler.messageIn(receive, length, fds, flags[0]!);
    else this.#handler.message(receive.subarray(0, length), fds, flags[0]!);
  }

  /**
   * Queues a message to send once the socket is writable again, after what
   * is queued already: for replies a {@link Receiver} could not send.
   *
   * @param bytes The message; the channel keeps it.
   * @param fds Its fds, which the channel takes over and closes once sent.
   */
  enqueue(bytes: Uint8Array, fds: number[]): void {
    if (this.#closed) {
      for (const fd of fds) this.#native.symbols.pk_close(fd);
      return;
    }
    this.#queue.push({ bytes, fds });
    this.#queuedBytes += bytes.length;
    this.#queuedFds += fds.length;
    if (this.#queuedBytes > this.#maxQueued || this.#queuedFds > this.#maxQueuedFds) {
      this.#fail(
        `send queue over ${this.#maxQueued} bytes or ${this.#maxQueuedFds} fds: the peer does not read`,
      );
      return;
    }
    if (this.#queue.length === 1) this.#watch();
  }

  /** Sends the first `length` bytes of `bytes` as one message, or queues a copy. */
  #sendOrQueue(bytes: Uint8Array, length: number, fds: Int32Array, count: number): void {
    if (this.#queue.length === 0 && this.#send(bytes, length, fds, count)) return;
    if (this.#closed) return;
    const copies: number[] = [];
    for (let i = 0; i < count; i++) {
      const copy = this.#native.symbols.pk_dup(fds[i]!);
      if (copy < 0) {
        for (const fd of copies) this.#native.symbols.pk_close(fd);
        this.#fail(errnoError(-copy, "dup").message);
        return;
      }
      copies.push(copy);
    }
    this.#queue.push({ bytes: bytes.slice(0, length), fds: copies });
    this.#queuedBytes += length;
    this.#queuedFds += copies.length;
    if (this.#queuedBytes > this.#maxQueued || this.#queuedFds > this.#maxQueuedFds) {
      this.#fail(
        `send queue over ${this.#maxQueued} bytes or ${this.#maxQueuedFds} fds: the peer does not read`,
      );
      return;
    }
    if (this.#queue.length === 1) this.#watch();
  }

  /** Sends the first `length` bytes of `bytes` as one message now; false when the socket is full. */
  #send(bytes: Uint8Array, length: number, fds: Int32Array, count: number): boolean {
    const result = Number(
      this.#native.symbols.pk_sendmsg(this.#fd, bytes, bigLength(length), fds, count),
    );
    if (result >= 0) {
      this.#counters.sent += result;
      return true;
    }
    if (result === -Errno.EAGAIN) return false;
    this.#fail(gone(-result) ? "connection closed" : errnoError(-result, "sendmsg").message);
    return false;
  }

  #drain(): void {
    const { fdsOut } = scratchBuffers();
    while (this.#queue.length > 0) {
      const next = this.#queue[0]!;
      for (let i = 0; i < next.fds.length; i++) fdsOut[i] = next.fds[i]!;
      if (!this.#send(next.bytes, next.bytes.length, fdsOut, next.fds.length)) return;
      this.#queue.shift();
      this.#queuedBytes -= next.bytes.length;
      this.#queuedFds -= next.fds.length;
      for (const fd of next.fds) this.#native.symbols.pk_close(fd);
    }
    this.#watch();
    this.#handler.drained?.();
  }

  #watch(): void {
    const events = (this.#reading ? IN : 0) | (this.#queue.length > 0 ? OUT : 0);
    this.#reactor.modify(this.#fd, this.#token, events);
  }

  #fail(reason: string): void {
    if (this.#closed) return;
    this.#end();
    this.#handler.closed(reason);
  }

  #end(): void {
    this.#closed = true;
    if (this.#count > 0) this.#reactor.schedule.busy(-1);
    this.#frames.length = 0;
    this.#offsets.length = 0;
    this.#lengths.length = 0;
    this.#frameFds.length = 0;
    this.#count = 0;
    this.#pushedBytes = 0;
    this.#arena = undefined;
    this.#arenaUsed = 0;
    for (const queued of this.#queue) {
      for (const fd of queued.fds) this.#native.symbols.pk_close(fd);
    }
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#queuedFds = 0;
    this.#removed = this.#reactor.remove(this.#fd, this.#token);
    this.#native.symbols.pk_close(this.#fd);
  }
}

let lastLength = 0;
let lastBig = 0n;

/**
 * A message length as `pk_sendmsg` takes it, a BigInt: the one made last
 * when the length is the same, as it is for a run of puts of one size.
 */
function bigLength(length: number): bigint {
  if (length !== lastLength) {
    lastLength = length;
    lastBig = BigInt(length);
  }
  return lastBig;
}

/**
 * Whether `errno` says only that the other side has gone: it closed with a
 * message unread (ECONNRESET) or before one could reach it (EPIPE), as an
 * exiting process does; the end of its connection, not a failure.
 */
function gone(errno: number): boolean {
  return errno === Errno.ECONNRESET || errno === Errno.EPIPE;
}
