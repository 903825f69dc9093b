/**
 * A lock shared by every process of one peer, for work that one of them
 * should do while the others wait for it. The lock is an object under
 * CREATE that is never sealed, so it ends with its holder: released,
 * expired unrenewed, or its connection gone.
 *
 * @module
 */
import type { Client } from "../client/client.ts";
import { AlreadyExistsError } from "../core/errors.ts";
import { Access } from "../core/lease.ts";

/** How long a lock outlives a holder that stops renewing it. */
const LOCK_TTL_MS = 15_000;

/** How often a caller waiting on a lock looks whether it is gone. */
const LOCK_POLL_MS = 10;

/**
 * Runs `fn` under the lock `id` unless a caller in any process sharing the
 * peer holds it; then waits until that one ends and returns `{ ran: false }`.
 *
 * @param client The client of the peer the processes share.
 * @param id The lock's object id, which no object of data may use.
 * @param fn The work.
 * @returns What `fn` returned, or that another caller ran it.
 */
export async function runOnce<T>(
  client: Client,
  id: string,
  fn: () => Promise<T>,
): Promise<{ ran: true; value: T } | { ran: false }> {
  const peer = client.peer;
  let lease;
  try {
    ({ lease } = await peer.acquire(id, Access.CREATE, { size: 0, ttl: LOCK_TTL_MS }));
  } catch (error) {
    if (!(error instanceof AlreadyExistsError)) throw error;
    while (await client.has(id)) {
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
    }
    return { ran: false };
  }
  // Renewed while the holder lives, so a long download keeps it and a dead holder's expires.
  const renewal = setInterval(() => peer.renew(lease.id).catch(() => {}), LOCK_TTL_MS / 3);
  try {
    return { ran: true, value: await fn() };
  } finally {
    clearInterval(renewal);
    // Releasing an unsealed CREATE lease discards the lock object.
    await peer.release(lease.id).catch(() => {});
  }
}
