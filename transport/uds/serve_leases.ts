/**
 * The server's handlers of the operations on leases: ACQUIRE (with the
 * memfds a CREATE may carry), SEAL, DISCARD, RELEASE (one-way or not) and
 * RENEW.
 *
 * @module
 */
import { InvalidArgumentError, ProtocolError } from "../../core/errors.ts";
import { Access } from "../../core/lease.ts";
import type { Acquired, AcquireOptions } from "../../core/peer.ts";
import {
  type AcquireRequest,
  discardRequest,
  releaseRequest,
  sealRequest,
} from "../../core/requests.ts";
import {
  type AcquireReply,
  decodeRenew,
  decodeText,
  Flag,
  MAX_FDS,
  Op,
  textFrameRoom,
  writeTextFrame,
} from "./protocol.ts";
import { closeAll, empty, json, owned, type Session, written } from "./session.ts";

/** Grants a lease; `memfds`, which a CREATE may carry, are closed unless the peer takes them. */
export async function acquire(
  session: Session,
  id: number,
  request: AcquireRequest,
  memfds: number[] = [],
): Promise<undefined> {
  const options: AcquireOptions = {
    ...(request.ttl === undefined ? {} : { ttl: request.ttl }),
    ...(request.objectTtl === undefined ? {} : { objectTtl: request.objectTtl }),
    ...(request.size === undefined ? {} : { size: request.size }),
    ...(request.meta === undefined ? {} : { meta: request.meta }),
    ...(memfds.length === 0 ? {} : { memfds }),
    ...(request.local === true ? { local: true } : {}),
  };
  let acquired: Acquired;
  try {
    if (memfds.length > 0 && request.access !== Access.CREATE) {
      throw new InvalidArgumentError(`Invalid memfds: only a CREATE lease takes them`);
    }
    acquired = await session.peer.acquire(request.objectId, request.access, options);
  } catch (error) {
    closeAll(session, memfds);
    throw error;
  }
  const fds = keep(session, acquired);
  if (fds === undefined) return undefined;
  if (acquired.lease.access === Access.READ) {
    session.context.metrics.readBytes += acquired.object.size;
  }
  const reply: AcquireReply = { lease: acquired.lease, object: acquired.object };
  // The fds stay open until the flush of this turn: the lease holds the blobs,
  // and only a timer (expiry) or another message (release) could end it.
  const text = json(reply);
  const channel = session.channel;
  const into = channel.reserve(textFrameRoom(text));
  channel.commit(into, writeTextFrame(into, Op.ACQUIRE, id, Flag.REPLY, text, fds.length), fds);
  return undefined;
}

/**
 * Records a lease granted to this connection and returns its blobs' fds;
 * undefined, with the lease released, when the client has gone meanwhile.
 */
export function keep(session: Session, acquired: Acquired): number[] | undefined {
  const leaseId = acquired.lease.id;
  if (session.channel.closed) {
    session.peer.release(leaseId).catch(() => {});
    return undefined;
  }
  let fds: number[];
  try {
    fds = fdsOf(acquired);
  } catch (error) {
    session.peer.release(leaseId).catch(() => {});
    throw error;
  }
  session.leases.set(leaseId, acquired);
  return fds;
}

export function seal(session: Session, body: Uint8Array): Promise<string> {
  const lease = owned(session, sealRequest(decodeText(body)));
  return session.peer.seal(lease).then((info) => written(session, info));
}

export function discard(session: Session, body: Uint8Array): Promise<Uint8Array> {
  const lease = owned(session, discardRequest(decodeText(body)));
  return session.peer.discard(lease).then(() => {
    session.leases.delete(lease);
    return empty;
  });
}

export function release(session: Session, body: Uint8Array): Promise<Uint8Array> {
  const leaseId = releaseRequest(decodeText(body));
  if (session.fast?.release(leaseId) === true) return Promise.resolve(empty);
  const lease = owned(session, leaseId);
  // Ended whatever the peer says: a lease that fails to release has expired.
  session.leases.delete(lease);
  return session.peer.release(lease).then(() => empty);
}

/**
 * Ends a lease whose client waits for no answer, as most releases are:
 * there is nothing to reply and nothing for the next request to wait on.
 */
export function releaseOneWay(session: Session, body: Uint8Array): void {
  let lease: string;
  try {
    lease = releaseRequest(session.recent.decode(body));
    // A lease granted in C, ended there (its expiry is no news to a one-way release).
    if (session.fast?.release(lease) === true) return;
    owned(session, lease);
  } catch {
    return;
  }
  // Ended whatever the peer says: a lease that fails to release has expired.
  session.leases.delete(lease);
  session.peer.release(lease).catch(ignore);
}

function ignore(): void {}

export function renew(session: Session, body: Uint8Array): Promise<string> {
  const { leaseId, ttl } = decodeRenew(body);
  const renewed = session.fast?.renew(leaseId, ttl);
  if (renewed !== undefined) return Promise.resolve(json(renewed));
  return session.peer.renew(owned(session, leaseId), ttl).then(json);
}

/** The fds of an acquired object's blobs, in order, or none when they have none. */
function fdsOf(acquired: Acquired): number[] {
  const fds: number[] = [];
  for (const blob of acquired.blobs) {
    const fd = blob.fd;
    if (fd === undefined) break;
    fds.push(fd);
  }
  if (fds.length !== 0 && fds.length !== acquired.blobs.length) {
    throw new ProtocolError(`Cannot share object ${acquired.object.id}: some blobs have no fd`);
  }
  if (fds.length > MAX_FDS) {
    throw new InvalidArgumentError(
      `Cannot share object ${acquired.object.id}: ${fds.length} blobs, at most ${MAX_FDS} over a Unix socket`,
    );
  }
  return fds;
}
