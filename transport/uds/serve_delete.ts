/**
 * The server's handler of DELETE: an object deleted in one request, through
 * the peer's one-call delete where it offers one, else a WRITE lease of the
 * server's own and its discard. The client gets no lease and no fds.
 *
 * @module
 */
import { deleteObject } from "../../core/delete_in_steps.ts";
import { deleteRequest } from "../../core/requests.ts";
import { decodeText } from "./protocol.ts";
import { empty, type Session } from "./session.ts";

/** Deletes the object the body names; an empty reply once it has left lookups. */
export function remove(session: Session, body: Uint8Array): Promise<Uint8Array> {
  const objectId = deleteRequest(decodeText(body));
  return deleteObject(session.peer, objectId).then(emptyReply);
}

function emptyReply(): Uint8Array {
  return empty;
}
