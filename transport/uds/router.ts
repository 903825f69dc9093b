/**
 * Routes a request of the Unix-socket server to its handler, by operation.
 *
 * @module
 */
import { ProtocolError } from "../../core/errors.ts";
import { decodeAcquire, Flag, Op } from "./protocol.ts";
import { put, read, write } from "./serve_blobs.ts";
import { acquire, discard, release, renew, seal } from "./serve_leases.ts";
import { remove } from "./serve_delete.ts";
import { arrive, arriveCancel, arriveNext } from "./serve_arriving.ts";
import { fetchOrigin, has, list, metrics, stat, stats, status } from "./serve_queries.ts";
import type { Session } from "./session.ts";

/**
 * Parses a request synchronously (the body is reused after this) and starts
 * it. Replies that carry fds are pushed by their handler, which resolves
 * with undefined; the others resolve with the reply's body. OPEN, the
 * request of every get, is started by the connection itself on a pooled
 * record (`serve_open.ts`), with no promise of its own between the grant and
 * the reply.
 *
 * @throws {ProtocolError} For an unknown operation.
 */
export function route(
  session: Session,
  op: number,
  id: number,
  body: Uint8Array,
  flags = 0,
): Promise<Uint8Array | string | undefined> {
  switch (op) {
    case Op.ACQUIRE:
      return acquire(session, id, decodeAcquire(body));
    case Op.SEAL:
      return seal(session, body);
    case Op.DISCARD:
      return discard(session, body);
    case Op.RELEASE:
      return release(session, body);
    case Op.RENEW:
      return renew(session, body);
    case Op.STAT:
      return stat(session, body);
    case Op.LIST:
      return list(session, body);
    case Op.HAS:
      return has(session, body);
    case Op.STATS:
      return stats(session);
    case Op.STATUS:
      return status(session);
    case Op.READ:
      return read(session, body);
    case Op.WRITE:
      return write(session, body);
    case Op.PUT:
      return put(session, body, (flags & Flag.COMPACT) !== 0);
    case Op.METRICS:
      return metrics(session);
    case Op.DELETE:
      return remove(session, body);
    case Op.FETCH:
      return fetchOrigin(session, body);
    case Op.ARRIVE:
      return arrive(session, body);
    case Op.ARRIVE_NEXT:
      return arriveNext(session, body);
    case Op.ARRIVE_CANCEL:
      return arriveCancel(session, body);
    default:
      throw new ProtocolError(`Unknown operation: ${op}`);
  }
}
