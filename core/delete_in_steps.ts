/** Deleting an object: through the two steps every peer offers (acquire WRITE, discard), or the one-request delete of a peer that offers it. */
import { Access } from "./lease.ts";
import { offersDirectDelete, type Peer } from "./peer.ts";

/**
 * Deletes an object through any peer's steps: a WRITE lease, then its
 * discard. For a peer without a one-request delete (`DirectDelete`), and for
 * a server that offers that request over a peer without one.
 *
 * @param peer The peer.
 * @param objectId The object.
 * @throws {NotFoundError} When there is no such object.
 *
 * @example Delete an object
 * ```ts ignore
 * await deleteInSteps(peer, "greeting");
 * ```
 */
export async function deleteInSteps(peer: Peer, objectId: string): Promise<void> {
  const { lease } = await peer.acquire(objectId, Access.WRITE);
  await peer.discard(lease.id);
}

/**
 * Deletes an object the quickest way `peer` offers: its one-request delete
 * (`DirectDelete`) where it has one, else {@link deleteInSteps}.
 *
 * @param peer The peer.
 * @param objectId The object.
 * @throws {NotFoundError} When there is no such object.
 *
 * @example Delete an object through any peer
 * ```ts ignore
 * await deleteObject(peer, "greeting");
 * ```
 */
export function deleteObject(peer: Peer, objectId: string): Promise<void> {
  return offersDirectDelete(peer) ? peer.deleteObject(objectId) : deleteInSteps(peer, objectId);
}
