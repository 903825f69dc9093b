/**
 * The wire format of the Unix-socket transport, version 1.
 *
 * Each `SOCK_SEQPACKET` message holds one or more frames back to back, so a
 * client can pipeline several requests in one system call. A frame is a fixed
 * 16-byte little-endian header and a body:
 *
 * | offset | size | field                                             |
 * | ------ | ---- | ------------------------------------------------- |
 * | 0      | 2    | magic `0x4b50` (bytes `P`, `K`)                   |
 * | 2      | 1    | protocol version, {@link PROTOCOL_VERSION}        |
 * | 3      | 1    | operation, one of {@link Op}                      |
 * | 4      | 4    | request id, chosen by the client, echoed in reply |
 * | 8      | 4    | body length in bytes                              |
 * | 12     | 1    | flags, see {@link Flag}                           |
 * | 13     | 1    | file descriptors this frame carries               |
 * | 14     | 2    | reserved, zero                                    |
 *
 * File descriptors travel as `SCM_RIGHTS` on the message, in frame order.
 * Replies to ACQUIRE carry them, one memfd per blob, and so may a CREATE
 * request: memfds the client fills itself, one per blob, become the blobs; so may
 * an OPEN reply. Bodies are raw
 * UTF-8 ids for the operations on one lease or object, small binary records
 * for blob I/O, and JSON for the rest; an error reply's body is
 * `{ "code", "message" }`.
 *
 * This module holds one idea, the wire format, hence its length: the frame
 * header, the frame iterator both sides use, and the body of each operation
 * but OPEN's (`open_frame.ts`).
 *
 * @module
 */
import { ProtocolError } from "../../core/errors.ts";
import { isPlainObject } from "../../core/plain_object.ts";
import {
  type AcquireRequest as CheckedAcquire,
  acquireRequest,
  type RenewRequest,
  renewRequest,
} from "../../core/requests.ts";
import type { Lease } from "../../core/lease.ts";
import type { ObjectInfo } from "../../core/object.ts";
import {
  readFloat64,
  readUint16,
  readUint32,
  writeFloat64,
  writeUint16,
  writeUint32,
} from "../../core/little_endian.ts";

/** The protocol version this implementation speaks. */
export const PROTOCOL_VERSION = 1;
/** The first two bytes of every frame, `P` `K`, read as a little-endian u16. */
export const MAGIC = 0x4b50;
/** Bytes in a frame header. */
export const HEADER_SIZE = 16;
/** The largest message either side sends or accepts, below the default socket buffer. */
export const MAX_MESSAGE = 192 * 1024;
/** The largest body of one frame. */
export const MAX_BODY = MAX_MESSAGE - HEADER_SIZE;
/** Bodies longer than this are split over frames flagged {@link Flag.MORE}. */
export const CHUNK = 128 * 1024;
/** The most file descriptors one message carries (the kernel's `SCM_MAX_FD`). */
export const MAX_FDS = 253;

/** Operations. Requests and their replies carry the same code. */
export const Op = {
  /**
   * Body JSON {@link AcquireRequest}; reply JSON {@link AcquireReply} and one
   * fd per blob. A CREATE may carry memfds of its own, one per blob (see
   * `AcquireOptions.memfds`); a daemon that keeps no blobs in memfds answers
   * it with an `UNSUPPORTED` error.
   */
  ACQUIRE: 1,
  /** Body the lease id; reply JSON `ObjectInfo`. */
  SEAL: 2,
  /** Body the lease id; empty reply. */
  DISCARD: 3,
  /** Body the lease id; empty reply, none when sent {@link Flag.ONE_WAY}. */
  RELEASE: 4,
  /** Body JSON `{ lease, ttl? }`; reply JSON `Lease`. */
  RENEW: 5,
  /** Body the object id; reply JSON `ObjectInfo`. */
  STAT: 6,
  /**
   * Body JSON `ListPageOptions` (`{ after?, limit? }`, see
   * `core/list_page.ts`); reply JSON `ListPage` (`{ objects, next? }`): one
   * page of the list in put order, `next` the cursor of the next page,
   * absent at the end. A bad cursor or limit gets `INVALID_ARGUMENT`.
   * An empty body (a client from before pages) gets JSON `ObjectInfo[]`,
   * the whole list, up to 10,000 objects, or `UNSUPPORTED` beyond, which
   * says to upgrade. A server from before pages ignores the body and
   * answers the whole list as an array, which a client takes as its one
   * page. Replies longer than {@link CHUNK} are split with {@link Flag.MORE}.
   */
  LIST: 7,
  /** Body the object id; reply one byte, 1 or 0. */
  HAS: 8,
  /** Empty body; reply JSON `PeerStats`. */
  STATS: 9,
  /** Blob I/O for peers without memfds: body {@link encodeRead}; reply the bytes. */
  READ: 10,
  /** Blob I/O for peers without memfds: body {@link encodeWrite}; empty reply. */
  WRITE: 11,
  /**
   * A small object in one step: body {@link writePutFrame}; reply JSON
   * `ObjectInfo`, or its compact form ({@link writePutReply}) when the
   * request is flagged {@link Flag.COMPACT} and the object fits that form.
   */
  PUT: 12,
  /**
   * A READ lease in compact form, for `get`: see `open_frame.ts`. The reply
   * carries one fd per blob, or none when the client still maps the object.
   */
  OPEN: 13,
  /**
   * Empty body; reply JSON `Record<string, number>`: the peer's own metrics
   * (`Peer.metrics()`) and the server's counters, by name without the
   * `packice_` prefix.
   */
  METRICS: 14,
  /** Empty body; reply JSON `DaemonStatus`, or `UNSUPPORTED` from a server not run by a daemon. */
  STATUS: 15,
  /**
   * Body the object id; empty reply. Deletes an object in one request, as
   * ACQUIRE WRITE then DISCARD would in two. A server from before it answers
   * `PROTOCOL` ("Unknown operation"), and the client falls back to those.
   */
  DELETE: 16,
  /**
   * Body JSON `OriginRequest` (see `transport/origin_fetch.ts`); reply JSON
   * `OriginReply`, the object holding the body, or `UNSUPPORTED` from a
   * server with no read-through.
   */
  FETCH: 17,
  /**
   * Body the object id; reply JSON `{ object, stream }` for an object on its
   * way to the daemon (see `ArrivingRead`), or `null` when it is held there
   * (read it with OPEN or ACQUIRE). A server from before it answers
   * `PROTOCOL`, and the client reads the object once it is sealed.
   */
  ARRIVE: 18,
  /**
   * Body the stream number of an ARRIVE reply, as text; reply the next bytes
   * of the object as soon as they are verified, empty once it is sealed and
   * all sent, or an error when it cannot be fetched whole.
   */
  ARRIVE_NEXT: 19,
  /** Body the stream number; empty reply. The stream ends: its bytes are not wanted any more. */
  ARRIVE_CANCEL: 20,
} as const;

/** One of {@link Op}. */
export type Op = typeof Op[keyof typeof Op];

/** Frame flags. */
export const Flag = {
  /** The frame is a reply. */
  REPLY: 1,
  /** The reply is an error: body JSON `{ code, message }`. */
  ERROR: 2,
  /** A request that wants no reply. */
  ONE_WAY: 4,
  /** The body continues in the next frame of the same request id. */
  MORE: 8,
  /**
   * A PUT request whose sender reads a compact reply ({@link writePutReply}).
   * A server from before it ignores the flag and replies JSON, which the
   * client tells from the compact form by its first byte.
   */
  COMPACT: 16,
} as const;

/** The body of an ACQUIRE request. */
export interface AcquireRequest {
  /** Object id; absent for CREATE with a fresh id. */
  readonly id?: string;
  /** READ, CREATE or WRITE. */
  readonly access: string;
  /** Lease TTL in milliseconds. */
  readonly ttl?: number;
  /** CREATE: the object's TTL in milliseconds, from the create. */
  readonly objectTtl?: number;
  /** CREATE: size or blob sizes. */
  readonly size?: number | readonly number[];
  /** CREATE: metadata. */
  readonly meta?: unknown;
  /** READ: only this host's copy (see `AcquireOptions.local`). */
  readonly local?: boolean;
}

/** The body of an ACQUIRE reply; the message carries one fd per blob, or none. */
export interface AcquireReply {
  /** The lease granted. */
  readonly lease: Lease;
  /** The object as it was when the lease was granted. */
  readonly object: ObjectInfo;
}

/** A parsed frame header. */
export interface Header {
  /** Protocol version. */
  readonly version: number;
  /** Operation code; unchecked. */
  readonly op: number;
  /** Request id. */
  readonly id: number;
  /** Body length in bytes. */
  readonly length: number;
  /** {@link Flag} bits. */
  readonly flags: number;
  /** File descriptors carried. */
  readonly fds: number;
}

const encoder = new TextEncoder();
// A leading U+FEFF is part of the text, an object id say, not a byte-order mark to drop.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** Texts up to this many UTF-16 units are encoded in JS when they are ASCII. */
const SHORT_TEXT = 512;
/**
 * Bodies up to this many bytes are decoded in JS when they are ASCII: ids and
 * lease ids. Longer ones (JSON) go to the runtime's decoder, which costs
 * less from about 50 bytes on than a JS string made of a list of codes.
 */
const SHORT_DECODE = 48;

/**
 * Builds a frame: header and body in one array.
 *
 * @param op The operation.
 * @param id The request id.
 * @param flags {@link Flag} bits.
 * @param body The body bytes.
 * @param fds How many file descriptors go with this frame.
 * @returns The frame's bytes.
 */
export function encodeFrame(
  op: number,
  id: number,
  flags: number,
  body: Uint8Array,
  fds = 0,
): Uint8Array {
  const frame = new Uint8Array(HEADER_SIZE + body.length);
  writeHeader(frame, op, id, flags, body.length, fds);
  frame.set(body, HEADER_SIZE);
  return frame;
}

/** The most bytes a text frame of `text` takes. */
export function textFrameRoom(text: string): number {
  // UTF-8 needs at most three bytes per UTF-16 unit.
  return HEADER_SIZE + text.length * 3;
}

/**
 * Writes a frame whose body is a string (an id, or JSON), encoded straight
 * into the frame, into `room` from `at`, where there are at least
 * {@link textFrameRoom} bytes.
 *
 * @returns The frame's length.
 */
export function writeTextFrame(
  room: Uint8Array,
  op: number,
  id: number,
  flags: number,
  text: string,
  fds = 0,
  at = 0,
): number {
  const written = writeText(room, text, at + HEADER_SIZE);
  writeHeader(room, op, id, flags, written, fds, at);
  return HEADER_SIZE + written;
}

/**
 * Writes a frame header at the start of `frame`, or from `at`.
 *
 * @throws {ProtocolError} When the body is longer than {@link MAX_BODY}.
 */
export function writeHeader(
  frame: Uint8Array,
  op: number,
  id: number,
  flags: number,
  length: number,
  fds: number,
  at = 0,
): void {
  if (length > MAX_BODY) throw new ProtocolError(`Frame body too large: ${length} bytes`);
  writeUint16(frame, at, MAGIC);
  frame[at + 2] = PROTOCOL_VERSION;
  frame[at + 3] = op;
  writeUint32(frame, at + 4, id);
  writeUint32(frame, at + 8, length);
  frame[at + 12] = flags;
  frame[at + 13] = fds;
  frame[at + 14] = 0;
  frame[at + 15] = 0;
}

/**
 * Writes `text` as UTF-8 into `into` from `at`, where there is room for three
 * bytes per UTF-16 unit; returns the bytes written. Short ASCII text, such
 * as ids, is copied here, without a view of `into` to pass: cheaper than a
 * call into the runtime.
 */
export function writeText(into: Uint8Array, text: string, at = 0): number {
  if (text.length <= SHORT_TEXT) {
    let i = 0;
    for (; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 0x80) break;
      into[at + i] = code;
    }
    if (i === text.length) return i;
  }
  return encoder.encodeInto(text, at === 0 ? into : into.subarray(at)).written;
}

/**
 * Reads the header of the frame at `offset` of a message.
 *
 * @param message The received message.
 * @param offset Where the frame starts.
 * @returns The header, or a description of what is wrong with it.
 */
export function readHeader(message: Uint8Array, offset: number): Header | string {
  return readHeaderInto(newHeader(), message, offset);
}

/** A header to fill with {@link readHeaderInto}. */
function newHeader(): { -readonly [K in keyof Header]: Header[K] } {
  return { version: 0, op: 0, id: 0, length: 0, flags: 0, fds: 0 };
}

/**
 * {@link readHeader} into `header`, which it returns, or a description of
 * what is wrong: the frame iterator fills one header for every frame instead
 * of making one per frame.
 */
function readHeaderInto(
  header: { -readonly [K in keyof Header]: Header[K] },
  message: Uint8Array,
  offset: number,
  end = message.length,
): Header | string {
  if (end - offset < HEADER_SIZE) {
    return `truncated header: ${end - offset} bytes`;
  }
  if (readUint16(message, offset) !== MAGIC) return "bad magic";
  const length = readUint32(message, offset + 8);
  if (length > end - offset - HEADER_SIZE) {
    return `body of ${length} bytes overruns the message`;
  }
  header.version = message[offset + 2]!;
  header.op = message[offset + 3]!;
  header.id = readUint32(message, offset + 4);
  header.length = length;
  header.flags = message[offset + 12]!;
  header.fds = message[offset + 13]!;
  return header;
}

/**
 * The operation and request id of a frame whose header may be cut or bad,
 * to address an error reply; zeros when even those are missing.
 *
 * @param frame The bytes where the frame starts.
 * @returns The operation and request id.
 */
export function peekHeader(frame: Uint8Array): { op: number; id: number } {
  if (frame.length < 8) return { op: 0, id: 0 };
  if (readUint16(frame, 0) !== MAGIC) return { op: 0, id: 0 };
  return { op: frame[3]!, id: readUint32(frame, 4) };
}

/** The fds of a frame that carries none; never changed. */
export const NO_FDS: number[] = [];

/**
 * Walks the frames of a received message, handing each its body and its
 * share of the message's fds, in order: the one loop over frames of both
 * sides. Bodies are views of the message, valid until it is reused, and
 * the header {@link Frames.next} returns is one object, filled anew for each
 * frame: read what it holds before the next call.
 *
 * @example Read the frames of a message
 * ```ts ignore
 * const frames = new Frames(message, fds);
 * for (let header = frames.next(); header !== undefined; header = frames.next()) {
 *   if (typeof header === "string") break; // the framing is lost
 *   console.log(header.op, frames.body.length, frames.fds.length);
 * }
 * ```
 */
export class Frames {
  #message: Uint8Array;
  #length: number;
  #allFds: readonly number[];
  #offset = 0;
  #fdAt = 0;
  readonly #header = newHeader();
  /** Where the body of the frame {@link Frames.next} returned last starts in the message. */
  start = 0;
  /** Where it ends. */
  end = 0;
  /** The fds of the frame {@link Frames.next} returned last, taken from the message's. */
  fds: number[] = NO_FDS;

  /**
   * @param message The received message.
   * @param fds The fds that came with it.
   */
  constructor(message: Uint8Array, fds: readonly number[] = NO_FDS) {
    this.#message = message;
    this.#length = message.length;
    this.#allFds = fds;
  }

  /**
   * Starts over on another message, as a new walker would: a connection
   * walks each message it receives with one walker instead of a new one.
   *
   * @param message The received message, or a buffer that holds it from its start.
   * @param fds The fds that came with it.
   * @param length The message's length: the buffer's when not given.
   * @returns This walker.
   */
  reset(message: Uint8Array, fds: readonly number[] = NO_FDS, length = message.length): this {
    this.#message = message;
    this.#length = length;
    this.#allFds = fds;
    this.#offset = 0;
    this.#fdAt = 0;
    this.start = this.end = 0;
    this.fds = NO_FDS;
    return this;
  }

  /**
   * Moves to the next frame.
   *
   * @returns Its header; undefined after the last; a description of what is
   *   wrong when the framing is lost, after which it stays on the bad frame.
   */
  next(): Header | string | undefined {
    const message = this.#message;
    if (this.#offset >= this.#length) return undefined;
    const header = readHeaderInto(this.#header, message, this.#offset, this.#length);
    if (typeof header === "string") return header;
    const start = this.#offset + HEADER_SIZE;
    this.#offset = start + header.length;
    this.start = start;
    this.end = this.#offset;
    this.fds = header.fds === 0 ? NO_FDS : this.#allFds.slice(this.#fdAt, this.#fdAt + header.fds);
    this.#fdAt += header.fds;
    return header;
  }

  /** The body of the frame {@link Frames.next} returned last: a view of the message. */
  get body(): Uint8Array {
    return this.start === this.end ? EMPTY : this.#message.subarray(this.start, this.end);
  }

  /** The bytes from the frame after the last one returned (or the bad one) to the end. */
  rest(): Uint8Array {
    return this.#message.subarray(this.#offset, this.#length);
  }

  /** The fds no frame returned so far has taken; none once taken here. */
  takeRest(): number[] {
    if (this.#fdAt >= this.#allFds.length) return NO_FDS;
    const rest = this.#allFds.slice(this.#fdAt);
    this.#fdAt = this.#allFds.length;
    return rest;
  }
}

const EMPTY = new Uint8Array(0);

/**
 * For each length up to {@link SHORT_DECODE}, an array of that many char
 * codes: `String.fromCharCode.apply` of a plain array reads it in place,
 * where applied to the bytes themselves it copies them into a new list first.
 */
const shortCodes: number[][] = Array.from(
  { length: SHORT_DECODE + 1 },
  (_, n) => new Array(n).fill(0),
);

/**
 * Decodes a UTF-8 body, or the bytes of one from `from` to `to`.
 *
 * @throws {ProtocolError} When it is not valid UTF-8.
 */
export function decodeText(body: Uint8Array, from = 0, to = body.length): string {
  // Ids and lease ids are short ASCII: decoding those here skips a call into
  // the runtime, which costs more than the loop.
  const length = to - from;
  if (length <= SHORT_DECODE) {
    const codes = shortCodes[length]!;
    let i = 0;
    for (; i < length; i++) {
      const code = body[from + i]!;
      if (code >= 0x80) break;
      codes[i] = code;
    }
    if (i === length) return String.fromCharCode.apply(null, codes);
  }
  try {
    return decoder.decode(from === 0 && to === body.length ? body : body.subarray(from, to));
  } catch {
    throw new ProtocolError("Malformed body: not UTF-8");
  }
}

/** Encodes a string as UTF-8. */
export function encodeText(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Decodes a JSON body.
 *
 * @throws {ProtocolError} When it is not UTF-8 JSON.
 */
export function decodeJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(decodeText(body));
  } catch {
    throw new ProtocolError("Malformed body: not JSON");
  }
}

/**
 * Decodes a JSON body that must hold an object.
 *
 * @throws {ProtocolError} When it is not UTF-8 JSON of an object.
 */
export function decodeObject(body: Uint8Array): Record<string, unknown> {
  const value = decodeJson(body);
  if (!isPlainObject(value)) {
    throw new ProtocolError("Malformed request body: expected a JSON object");
  }
  return value;
}

/**
 * Decodes and checks an ACQUIRE body, {@link AcquireRequest}, whose object
 * id travels as `id`.
 *
 * @throws {ProtocolError} When it is not a JSON object.
 * @throws {InvalidArgumentError} When a field is wrong.
 */
export function decodeAcquire(body: Uint8Array): CheckedAcquire {
  const { id, ...fields } = decodeObject(body);
  return acquireRequest({ ...fields, objectId: id });
}

/**
 * Decodes and checks a RENEW body, `{ lease, ttl? }`.
 *
 * @throws {ProtocolError} When it is not a JSON object.
 * @throws {InvalidArgumentError} When a field is wrong.
 */
export function decodeRenew(body: Uint8Array): RenewRequest {
  const { lease, ttl } = decodeObject(body);
  return renewRequest({ leaseId: lease, ttl });
}

/** The fields of a READ request. */
export interface ReadRequest {
  /** The lease. */
  readonly lease: string;
  /** Which blob of the object. */
  readonly blob: number;
  /** Where to start. */
  readonly offset: number;
  /** How many bytes, at most {@link CHUNK}. */
  readonly length: number;
}

/** Encodes a READ body: u32 blob, f64 offset, u32 length, then the lease id. */
export function encodeRead(request: ReadRequest): Uint8Array {
  const lease = encoder.encode(request.lease);
  const body = new Uint8Array(16 + lease.length);
  writeUint32(body, 0, request.blob);
  writeFloat64(body, 4, request.offset);
  writeUint32(body, 12, request.length);
  body.set(lease, 16);
  return body;
}

/** Decodes a READ body, or returns undefined when it is too short. */
export function decodeRead(body: Uint8Array): ReadRequest | undefined {
  if (body.length < 16) return undefined;
  return {
    blob: readUint32(body, 0),
    offset: readFloat64(body, 4),
    length: readUint32(body, 12),
    lease: decodeText(body.subarray(16)),
  };
}

/** The fields of a WRITE request. */
export interface WriteRequest {
  /** The lease. */
  readonly lease: string;
  /** Which blob of the object. */
  readonly blob: number;
  /** Where to write. */
  readonly offset: number;
  /** The bytes, at most {@link CHUNK}. */
  readonly bytes: Uint8Array;
}

/** Encodes a WRITE body: u32 blob, f64 offset, u32 lease id length, the lease id, the bytes. */
export function encodeWrite(request: WriteRequest): Uint8Array {
  const lease = encoder.encode(request.lease);
  const body = new Uint8Array(16 + lease.length + request.bytes.length);
  writeUint32(body, 0, request.blob);
  writeFloat64(body, 4, request.offset);
  writeUint32(body, 12, lease.length);
  body.set(lease, 16);
  body.set(request.bytes, 16 + lease.length);
  return body;
}

/** Decodes a WRITE body, or returns undefined when it is malformed. */
export function decodeWrite(body: Uint8Array): WriteRequest | undefined {
  if (body.length < 16) return undefined;
  const leaseLength = readUint32(body, 12);
  if (16 + leaseLength > body.length) return undefined;
  return {
    blob: readUint32(body, 0),
    offset: readFloat64(body, 4),
    lease: decodeText(body.subarray(16, 16 + leaseLength)),
    // A copy: the message buffer is reused as soon as the frame is parsed.
    bytes: body.slice(16 + leaseLength),
  };
}

/** The fields of a PUT request besides its bytes. */
export interface PutRequest {
  /** Object id; absent for a fresh one. */
  readonly id?: string;
  /** Metadata. */
  readonly meta?: unknown;
  /** TTL of the CREATE lease, while the object is written. */
  readonly ttl?: number;
}

/** The most bytes a PUT frame takes, given its fields as JSON. */
export function putFrameRoom(fields: string, size: number): number {
  return HEADER_SIZE + 4 + fields.length * 3 + size;
}

/**
 * Writes the frame of a plain PUT (no id, metadata or TTL: fields `{}`) of
 * `bytes` into `room` from `start`, flagged `flags`; returns its length.
 * Room: {@link putFrameRoom} of `"{}"`.
 */
export function writePlainPutFrame(
  room: Uint8Array,
  id: number,
  bytes: Uint8Array,
  start: number,
  flags: number,
): number {
  const length = 4 + 2 + bytes.length;
  writeHeader(room, Op.PUT, id, flags, length, 0, start);
  const at = start + HEADER_SIZE;
  writeUint32(room, at, 2);
  room[at + 4] = 0x7b; // {
  room[at + 5] = 0x7d; // }
  room.set(bytes, at + 6);
  return HEADER_SIZE + length;
}

/**
 * Writes a PUT frame into `room` from `start`, where there are at least
 * {@link putFrameRoom} bytes, with `flags` (see {@link Flag.COMPACT}): its
 * body is the u32 length of the JSON fields, the JSON, then the object's bytes.
 *
 * @returns The frame's length.
 */
export function writePutFrame(
  room: Uint8Array,
  id: number,
  fields: string,
  chunks: readonly Uint8Array[],
  size: number,
  start = 0,
  flags = 0,
): number {
  const written = writeText(room, fields, start + HEADER_SIZE + 4);
  const length = 4 + written + size;
  writeHeader(room, Op.PUT, id, flags, length, 0, start);
  writeUint32(room, start + HEADER_SIZE, written);
  let at = start + HEADER_SIZE + 4 + written;
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i]!;
    room.set(chunk, at);
    at += chunk.length;
  }
  return HEADER_SIZE + length;
}

/** The first byte of a compact PUT reply: a JSON reply's is `{`. */
const COMPACT_PUT = 0;
/** Bytes of a compact PUT reply before the id: marker, four f64s, u16 id length. */
const PUT_REPLY_FIXED = 35;
/** The fields of `ObjectInfo` a compact PUT reply carries, or implies, outside its JSON tail. */
const COMPACT_FIELDS = new Set([
  "id",
  "state",
  "size",
  "blobSizes",
  "meta",
  "createdAt",
  "sealedAt",
  "expiresAt",
]);

/**
 * The compact reply to a PUT flagged {@link Flag.COMPACT}: the info of the
 * object stored, with no JSON to write or parse for a put's usual fields.
 * Undefined when the info does not fit the form (several blobs, not sealed,
 * an id longer than 65535 bytes): reply JSON then.
 *
 * | offset | size | field                                            |
 * | ------ | ---- | ------------------------------------------------ |
 * | 0      | 1    | 0, where a JSON reply has `{`                    |
 * | 1      | 8    | f64 size in bytes, of one blob                   |
 * | 9      | 8    | f64 `createdAt`                                  |
 * | 17     | 8    | f64 `sealedAt`, NaN when absent                  |
 * | 25     | 8    | f64 `expiresAt`, NaN when absent                 |
 * | 33     | 2    | u16 id length in bytes, L                        |
 * | 35     | L    | id, UTF-8                                        |
 * | 35 + L | …    | JSON of the other fields (`meta` when not empty, |
 * |        |      | `digest`, …), or nothing                         |
 *
 * @param info The object's info.
 * @returns The reply body, or undefined.
 */
export function writePutReply(info: ObjectInfo): Uint8Array | undefined {
  if (info.state !== "SEALED" || info.blobSizes.length !== 1) return undefined;
  let rest: Record<string, unknown> | undefined;
  for (const key in info) {
    const value = info[key as keyof ObjectInfo];
    if (value === undefined || COMPACT_FIELDS.has(key)) continue;
    (rest ??= {})[key] = value;
  }
  const meta = info.meta;
  if (meta !== undefined && Object.keys(meta).length > 0) (rest ??= {}).meta = meta;
  const tail = rest === undefined ? "" : JSON.stringify(rest);
  // UTF-8 takes at most three bytes per UTF-16 unit: written in place, then cut to length.
  const body = new Uint8Array(PUT_REPLY_FIXED + (info.id.length + tail.length) * 3);
  const idLength = writeText(body, info.id, PUT_REPLY_FIXED);
  if (idLength > 0xffff) return undefined;
  body[0] = COMPACT_PUT;
  writeFloat64(body, 1, info.size);
  writeFloat64(body, 9, info.createdAt);
  writeFloat64(body, 17, info.sealedAt ?? Number.NaN);
  writeFloat64(body, 25, info.expiresAt ?? Number.NaN);
  writeUint16(body, 33, idLength);
  const end = PUT_REPLY_FIXED + idLength;
  return body.subarray(0, tail === "" ? end : end + writeText(body, tail, end));
}

/**
 * The id in the reply to a PUT, compact or JSON, with no info made: all a
 * put that returns the id needs. Takes the body as the bytes of `message`
 * from `from` to `to`.
 *
 * @throws {ProtocolError} When the reply is neither form or has no id.
 */
export function decodePutReplyId(message: Uint8Array, from: number, to: number): string {
  if (message[from] !== COMPACT_PUT) {
    const { id } = decodeJson(message.subarray(from, to)) as Partial<ObjectInfo>;
    if (typeof id !== "string") throw new ProtocolError("Malformed PUT reply: no id");
    return id;
  }
  const idStart = from + PUT_REPLY_FIXED;
  if (idStart > to) throw new ProtocolError("Malformed PUT reply");
  const idEnd = idStart + readUint16(message, from + 33);
  if (idEnd > to) throw new ProtocolError("Malformed PUT reply");
  return decodeText(message, idStart, idEnd);
}

/**
 * Decodes a PUT reply, compact ({@link writePutReply}) or JSON.
 *
 * @throws {ProtocolError} When it is neither.
 */
export function decodePutReply(body: Uint8Array): ObjectInfo {
  if (body[0] !== COMPACT_PUT) return decodeJson(body) as ObjectInfo;
  if (body.length < PUT_REPLY_FIXED) throw new ProtocolError("Malformed PUT reply");
  const idEnd = PUT_REPLY_FIXED + readUint16(body, 33);
  if (idEnd > body.length) throw new ProtocolError("Malformed PUT reply");
  const size = readFloat64(body, 1);
  const info: { -readonly [K in keyof ObjectInfo]: ObjectInfo[K] } = {
    id: decodeText(body, PUT_REPLY_FIXED, idEnd),
    state: "SEALED",
    size,
    blobSizes: [size],
    meta: {},
    createdAt: readFloat64(body, 9),
  };
  const sealedAt = readFloat64(body, 17);
  if (!Number.isNaN(sealedAt)) info.sealedAt = sealedAt;
  const expiresAt = readFloat64(body, 25);
  if (!Number.isNaN(expiresAt)) info.expiresAt = expiresAt;
  if (idEnd < body.length) {
    const rest = decodeJson(body.subarray(idEnd));
    if (!isPlainObject(rest)) throw new ProtocolError("Malformed PUT reply");
    Object.assign(info, rest);
  }
  return info;
}

/** Decodes a PUT body, copying its bytes; undefined when it is malformed. */
export function decodePut(body: Uint8Array): { request: unknown; bytes: Uint8Array } | undefined {
  if (body.length < 4) return undefined;
  const length = readUint32(body, 0);
  if (4 + length > body.length) return undefined;
  let request: unknown;
  if (length === 2 && body[4] === 0x7b && body[5] === 0x7d) {
    // `{}`, what a put without options sends: no parse needed.
    request = {};
  } else {
    try {
      request = JSON.parse(decodeText(body.subarray(4, 4 + length)));
    } catch {
      return undefined;
    }
  }
  return { request, bytes: body.slice(4 + length) };
}
