/** A delete through the two steps every peer offers: acquire WRITE, discard. */
import { Access } from "./lease.ts";
import type { Peer } from "./peer.ts";

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
