/**
 * The server's handlers of the operations that move an object's bytes over
 * the socket: READ and WRITE, for peers whose blobs have no memfd, and PUT,
 * a small object inline in one request.
 *
 * @module
 */
import { InvalidArgumentError, ProtocolError } from "../../core/errors.ts";
import type { Blob } from "../../core/blob.ts";
import { putInSteps } from "../../core/put_in_steps.ts";
import type { DirectPut, Peer } from "../../core/peer.ts";
import { putRequest } from "../../core/requests.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { CHUNK, decodePut, decodeRead, decodeWrite, writePutReply } from "./protocol.ts";
import { empty, json, owned, type Session, written } from "./session.ts";

export async function read(session: Session, body: Uint8Array): Promise<Uint8Array> {
  const request = decodeRead(body);
  if (request === undefined) throw new ProtocolError("Malformed READ request");
  if (request.length > CHUNK) {
    throw new InvalidArgumentError(`Invalid length: at most ${CHUNK} bytes per read`);
  }
  session.reading += request.length;
  try {
    return await blobOf(session, request.lease, request.blob).read(request.offset, request.length);
  } finally {
    session.reading -= request.length;
  }
}

export async function write(session: Session, body: Uint8Array): Promise<Uint8Array> {
  const request = decodeWrite(body);
  if (request === undefined) throw new ProtocolError("Malformed WRITE request");
  await blobOf(session, request.lease, request.blob).write(request.offset, request.bytes);
  return empty;
}

/**
 * Creates, writes, seals and releases a small object whose bytes came
 * inline; its info as the reply, compact when the client reads that form.
 */
export function put(
  session: Session,
  body: Uint8Array,
  compact = false,
): Promise<string | Uint8Array> {
  const decoded = decodePut(body);
  if (decoded === undefined) throw new ProtocolError("Malformed PUT request");
  const { bytes } = decoded;
  const request = putRequest(decoded.request);
  const peer = session.peer as Peer & Partial<DirectPut>;
  // A promise chain, not an async function: a small put is the common one.
  if (typeof peer.putObject === "function") {
    // The bytes are a copy of the request's, this put's to give up.
    const put = { ...request, transfer: true };
    return peer.putObject([bytes], bytes.length, put).then((info) => reply(session, info, compact));
  }
  const { id, meta, ttl } = request;
  return putInSteps(peer, id, [bytes], {
    size: bytes.length,
    ...(meta === undefined ? {} : { meta }),
    ...(ttl === undefined ? {} : { ttl, objectTtl: ttl }),
  }).then((info) => reply(session, info, compact));
}

function reply(session: Session, info: ObjectInfo, compact: boolean): string | Uint8Array {
  return compact ? written(session, info, compactOrJson) : written(session, info);
}

/** The compact form of a PUT reply where the info fits it, else JSON. */
function compactOrJson(info: ObjectInfo): string | Uint8Array {
  return writePutReply(info) ?? json(info);
}

/** A blob of a lease on this connection, for peers whose blobs have no fd. */
function blobOf(session: Session, lease: string, index: number): Blob {
  const blob = session.leases.get(owned(session, lease))!.blobs[index];
  if (blob === undefined) throw new InvalidArgumentError(`Invalid blob index: ${index}`);
  return blob;
}
