/**
 * The longest the event loop stops while a peer lists, evicts among or
 * stats objects that C stored for small puts and the peer has not taken in
 * yet (transport/uds/pending_puts.ts), for `uds_bench.ts`. The peer and its
 * server run in this process, so a timer here is late by what they do.
 */
import { Client, MemoryPeer, UdsPeer, UdsServer } from "../mod.ts";

/** Objects waiting when each operation is timed. */
export const WAITING = 100_000;
const SIZE = 1024;

/** The worst lateness of a 0 ms timer, in ms, while `work` runs. */
async function worstPause(work: () => Promise<unknown>): Promise<number> {
  let worst = 0;
  let last = performance.now();
  let running = true;
  const tick = () => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
    if (running) setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  await new Promise((resolve) => setTimeout(resolve, 20));
  worst = 0;
  await work();
  await new Promise((resolve) => setTimeout(resolve, 20));
  running = false;
  await new Promise((resolve) => setTimeout(resolve, 5));
  return worst;
}

/**
 * A cache-mode peer just full of {@link WAITING} objects put over its Unix
 * socket, none taken in, handed to `measure`; then closed.
 */
async function withWaiting<T>(
  dir: string,
  measure: (peer: MemoryPeer, ids: string[], server: UdsServer) => Promise<T>,
): Promise<T> {
  const peer = new MemoryPeer({ capacity: WAITING * SIZE, mode: "cache" });
  const path = `${dir}/waiting.sock`;
  const server = await UdsServer.listen(peer, path);
  const client = new Client(await UdsPeer.connect(path));
  try {
    const ids: string[] = [];
    const payload = new Uint8Array(SIZE).fill(9);
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next++ < WAITING) ids.push(await client.put(payload));
    }));
    return await measure(peer, ids, server);
  } finally {
    await client.close();
    await server.close();
    await peer.close();
  }
}

/** Figures for the `uds_waiting_100k_pause` line: the worst pause of each operation, in ms. */
export async function waitingPauses(dir: string): Promise<Record<string, number>> {
  const list = await withWaiting(dir, (peer) => worstPause(() => peer.list()));
  const stat = await withWaiting(
    dir,
    (peer, ids) => worstPause(() => peer.stat(ids[WAITING / 2]!)),
  );
  // A put of the JS path (an id of its own) into the full cache: the oldest go.
  const evict = await withWaiting(
    dir,
    (peer) => worstPause(() => peer.putObject([new Uint8Array(64 * 1024)], 64 * 1024, { id: "x" })),
  );
  // The server goes, then the peer, as a daemon stops.
  const close = await withWaiting(dir, (peer, _, server) =>
    worstPause(async () => {
      await server.close();
      await peer.close();
    }));
  return { list_ms: list, stat_ms: stat, evict_ms: evict, close_ms: close };
}
