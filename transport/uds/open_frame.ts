/**
 * The OPEN operation: a READ lease in compact binary form, for `get`, the
 * request a reader repeats most. Nothing in it is JSON but the object's
 * info, and that is left out, with the blobs' fds, when the object is the
 * one the client still maps from an earlier OPEN on the connection.
 *
 * Request body:
 *
 * | offset | size | field                                                 |
 * | ------ | ---- | ----------------------------------------------------- |
 * | 0      | 4    | u32 serial the client still maps this object as, or 0 |
 * | 4      | 1    | flags: 1 when a TTL follows, 2 for a local-only read  |
 * | 5      | 8    | f64 TTL in milliseconds, 0 without one                |
 * | 13     | …    | object id, UTF-8                                      |
 *
 * Reply body, with one fd per blob when the info is present:
 *
 * | offset | size | field                                                  |
 * | ------ | ---- | ------------------------------------------------------ |
 * | 0      | 4    | u32 serial of the object as this reply describes it    |
 * | 4      | 1    | flags: {@link OpenReplyFlag}                           |
 * | 5      | 1    | lease id length in bytes, L                            |
 * | 6      | 8    | f64 lease expiry in epoch milliseconds, 0 without one  |
 * | 14     | L    | lease id, UTF-8                                        |
 * | 14 + L | …    | `ObjectInfo` JSON, when flagged                        |
 *
 * @module
 */
import { readFloat64, readUint32, writeFloat64, writeUint32 } from "../../core/little_endian.ts";
import { decodeText, HEADER_SIZE, Op, writeHeader, writeText } from "./protocol.ts";

const REQUEST_FIXED = 13;
const REPLY_FIXED = 14;
/** The longest lease id an OPEN reply carries. */
const MAX_LEASE_ID = 255;

/** Flags of an OPEN reply. */
export const OpenReplyFlag = {
  /** The object's info follows, and its blobs' fds come with the reply. */
  INFO: 1,
  /** The lease expires: the expiry field is set. */
  EXPIRES: 2,
} as const;

/** The fields of an OPEN request. */
export interface OpenRequest {
  /** The object. */
  readonly objectId: string;
  /** The serial the client still maps the object as, from an earlier reply; 0 for none. */
  readonly known: number;
  /** TTL of the READ lease in milliseconds. */
  readonly ttl?: number | undefined;
  /** Only this host's copy (see `AcquireOptions.local`). */
  readonly local?: boolean | undefined;
}

/** The most bytes an OPEN request frame takes. */
export function openFrameRoom(objectId: string): number {
  return HEADER_SIZE + REQUEST_FIXED + objectId.length * 3;
}

/**
 * Writes an OPEN request frame into `room` from `at`, where there are at
 * least {@link openFrameRoom} bytes.
 *
 * @returns The frame's length.
 */
export function writeOpenFrame(
  room: Uint8Array,
  id: number,
  request: OpenRequest,
  at = 0,
): number {
  const body = at + HEADER_SIZE;
  const written = writeText(room, request.objectId, body + REQUEST_FIXED);
  writeUint32(room, body, request.known);
  room[body + 4] = (request.ttl === undefined ? 0 : 1) | (request.local === true ? 2 : 0);
  writeFloat64(room, body + 5, request.ttl ?? 0);
  writeHeader(room, Op.OPEN, id, 0, REQUEST_FIXED + written, 0, at);
  return HEADER_SIZE + REQUEST_FIXED + written;
}

/** Decodes the text fields of a frame. */
export interface TextDecoding {
  /**
   * Decodes `bytes` from byte `from` to the end.
   *
   * @throws {ProtocolError} When the bytes are not UTF-8.
   */
  decode(bytes: Uint8Array, from: number): string;
}

/** Where {@link readOpen} puts the fields of an OPEN request. */
export interface OpenFields {
  objectId: string;
  known: number;
  ttl: number | undefined;
  local: boolean;
}

/**
 * Decodes an OPEN request body into `into`, a record of the caller's, with
 * no object of its own; false when it is too short.
 *
 * @param texts Decodes the object id.
 * @throws {ProtocolError} When the object id is not UTF-8.
 */
export function readOpen(body: Uint8Array, into: OpenFields, texts: TextDecoding): boolean {
  if (body.length < REQUEST_FIXED) return false;
  into.objectId = texts.decode(body, REQUEST_FIXED);
  into.known = readUint32(body, 0);
  const flags = body[4]!;
  into.ttl = flags & 1 ? readFloat64(body, 5) : undefined;
  into.local = (flags & 2) !== 0;
  return true;
}

/** The fields of an OPEN reply. */
export interface OpenReply {
  /** The serial of the object as this reply describes it. */
  readonly serial: number;
  /** The READ lease's id. */
  readonly leaseId: string;
  /** When the lease expires, in epoch milliseconds. */
  readonly expiresAt?: number;
  /** The object's info as JSON; absent when it is the object the client still maps. */
  readonly info?: string;
}

/** The most bytes an OPEN reply frame takes. */
export function openReplyRoom(reply: OpenReply): number {
  return HEADER_SIZE + REPLY_FIXED + (reply.leaseId.length + (reply.info?.length ?? 0)) * 3;
}

/**
 * Writes an OPEN reply frame into `room` of at least {@link openReplyRoom} bytes.
 *
 * @param fds How many fds go with the frame.
 * @returns The frame's length.
 */
export function writeOpenReply(
  room: Uint8Array,
  id: number,
  flags: number,
  reply: OpenReply,
  fds: number,
): number {
  const body = HEADER_SIZE;
  const lease = writeText(room, reply.leaseId, body + REPLY_FIXED);
  if (lease > MAX_LEASE_ID) throw new RangeError(`Lease id too long: ${reply.leaseId}`);
  let length = REPLY_FIXED + lease;
  if (reply.info !== undefined) length += writeText(room, reply.info, body + length);
  writeUint32(room, body, reply.serial);
  room[body + 4] = (reply.info === undefined ? 0 : OpenReplyFlag.INFO) |
    (reply.expiresAt === undefined ? 0 : OpenReplyFlag.EXPIRES);
  room[body + 5] = lease;
  writeFloat64(room, body + 6, reply.expiresAt ?? 0);
  writeHeader(room, Op.OPEN, id, flags, length, fds);
  return HEADER_SIZE + length;
}

/** Where {@link readOpenReply} puts the fields of an OPEN reply. */
export interface OpenReplyFields {
  serial: number;
  leaseId: string;
  expiresAt: number | undefined;
  info: string | undefined;
}

/**
 * Decodes the OPEN reply body in `bytes` from `from` to `to` into `into`, a
 * record of the caller's, with no object or view of its own; false when it
 * is malformed.
 *
 * @throws {ProtocolError} When its text is not UTF-8.
 */
export function readOpenReply(
  bytes: Uint8Array,
  from: number,
  to: number,
  into: OpenReplyFields,
): boolean {
  if (to - from < REPLY_FIXED) return false;
  const flags = bytes[from + 4]!;
  const leaseEnd = from + REPLY_FIXED + bytes[from + 5]!;
  if (leaseEnd > to) return false;
  into.serial = readUint32(bytes, from);
  into.leaseId = decodeText(bytes, from + REPLY_FIXED, leaseEnd);
  into.expiresAt = flags & OpenReplyFlag.EXPIRES ? readFloat64(bytes, from + 6) : undefined;
  into.info = flags & OpenReplyFlag.INFO ? decodeText(bytes, leaseEnd, to) : undefined;
  return true;
}

/**
 * Decodes an OPEN reply body; undefined when it is malformed.
 *
 * @throws {ProtocolError} When its text is not UTF-8.
 */
export function decodeOpenReply(body: Uint8Array): OpenReply | undefined {
  const fields: OpenReplyFields = { serial: 0, leaseId: "", expiresAt: undefined, info: undefined };
  if (!readOpenReply(body, 0, body.length, fields)) return undefined;
  const reply: { serial: number; leaseId: string; expiresAt?: number; info?: string } = {
    serial: fields.serial,
    leaseId: fields.leaseId,
  };
  if (fields.expiresAt !== undefined) reply.expiresAt = fields.expiresAt;
  if (fields.info !== undefined) reply.info = fields.info;
  return reply;
}
