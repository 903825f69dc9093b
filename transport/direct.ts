import type { Peer } from "../core/peer.ts";

interface Shared {
  readonly peer: Peer;
  users: number;
}

const shared = new Map<string, Shared>();

/**
 * The in-process transport: clients call a peer's methods directly. Named
 * peers (`memory://name`) are shared by every client of this process that
 * uses the name, and closed when the last of them closes.
 *
 * @param name The peer's name.
 * @param make Makes the peer the first time the name is used.
 * @returns The peer, and a function to call once when this user is done.
 */
export function openSharedPeer(
  name: string,
  make: () => Peer,
): { peer: Peer; done: () => Promise<void> } {
  let entry = shared.get(name);
  if (entry === undefined) {
    entry = { peer: make(), users: 0 };
    shared.set(name, entry);
  }
  entry.users++;
  const current = entry;
  let done = false;
  return {
    peer: current.peer,
    done: async () => {
      if (done) return;
      done = true;
      if (--current.users > 0) return;
      if (shared.get(name) === current) shared.delete(name);
      await current.peer.close();
    },
  };
}
