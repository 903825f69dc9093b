/**
 * The server's handler of OPEN, the compact READ lease of `get`, and what
 * it remembers of each connection's replies: the info and fds it sent for
 * each object, under a serial, so that a client that still maps an object
 * gets a reply of a few bytes, without them.
 *
 * @module
 */
import { ProtocolError } from "../../core/errors.ts";
import { Access } from "../../core/lease.ts";
import type { Acquired, AcquireOptions } from "../../core/peer.ts";
import { setNewest } from "./newest.ts";
import {
  type OpenFields,
  type OpenReply,
  openReplyRoom,
  readOpen,
  writeOpenReply,
} from "./open_frame.ts";
import { Flag, NO_FDS } from "./protocol.ts";
import { keep } from "./serve_leases.ts";
import { json, type Session } from "./session.ts";

/** The options of most OPENs, and of local-only ones: shared, as no peer changes its options. */
const NO_OPTIONS: AcquireOptions = Object.freeze({});
const LOCAL: AcquireOptions = Object.freeze({ local: true });
/** How many objects a connection remembers sending to its client in OPEN replies. */
const MAX_SENT = 1024;

/** What an OPEN reply sent a client about an object, under a serial. */
interface Sent {
  readonly serial: number;
  /** The info object the peer handed out: a new one whenever the object changes. */
  readonly info: unknown;
  readonly fds: readonly number[];
}

/** What the OPEN replies of one connection sent, by object id, oldest first. */
export class ServerOpens {
  readonly sent = new Map<string, Sent>();
  lastSerial = 0;
}

/** Where an OPEN under way is answered: its request id, and its request's fields. */
export interface OpenCall extends OpenFields {
  /** The request id. */
  readonly id: number;
}

/**
 * Grants a READ lease in compact form (see `open_frame.ts`): decodes the
 * request into `call` and starts the lease, whose grant goes to
 * {@link opened}. The info and the fds are left out when this connection
 * sent the client, under the serial it names, the same info object with the
 * same fds: the same sealed bytes, which it still maps. (A tiered peer may
 * have moved those bytes to another memfd with the same fd number
 * meanwhile; they are the same bytes, and the client keeps the old memfd
 * only while it reads.)
 *
 * @throws {ProtocolError} When the request is malformed.
 */
export function open(session: Session, call: OpenCall, body: Uint8Array): Promise<Acquired> {
  if (!readOpen(body, call, session.recent)) throw new ProtocolError("Malformed OPEN request");
  const { objectId, ttl, local } = call;
  return session.peer.acquire(
    objectId,
    Access.READ,
    ttl === undefined ? (local ? LOCAL : NO_OPTIONS) : local ? { ttl, local } : { ttl },
  );
}

/** Pushes the reply of an OPEN whose lease the peer granted. */
export function opened(session: Session, call: OpenCall, acquired: Acquired): void {
  const fds = keep(session, acquired);
  if (fds === undefined) return;
  const { id, objectId, known } = call;
  session.context.metrics.readBytes += acquired.object.size;
  // Its release will spell it.
  session.recent.add(acquired.lease.id);
  const opens = session.opens;
  const sent = opens.sent.get(objectId);
  // The next gets of it are answered in C, under a serial of C's: C knows it as this.
  const fast = session.context.fast?.offer(acquired);
  const same = known !== 0 && (
    known === fast ||
    (sent !== undefined && sent.serial === known && sent.info === acquired.object &&
      sameFds(sent.fds, fds))
  );
  let serial = known;
  if (!same) {
    // Serials from 2^31 on are C's (`fast_opens.ts`).
    serial = fast ??
      (opens.lastSerial = opens.lastSerial === 0x7fff_ffff ? 1 : opens.lastSerial + 1);
    setNewest(opens.sent, objectId, { serial, info: acquired.object, fds }, MAX_SENT);
  }
  const reply: { -readonly [K in keyof OpenReply]: OpenReply[K] } = {
    serial,
    leaseId: acquired.lease.id,
  };
  const expiresAt = acquired.lease.expiresAt;
  if (expiresAt !== undefined) reply.expiresAt = expiresAt;
  if (!same) reply.info = json(acquired.object);
  const attached = same ? NO_FDS : fds;
  const channel = session.channel;
  const into = channel.reserve(openReplyRoom(reply));
  channel.commit(into, writeOpenReply(into, id, Flag.REPLY, reply, attached.length), attached);
}

function sameFds(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
