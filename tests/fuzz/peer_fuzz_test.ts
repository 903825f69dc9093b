/**
 * Property-based fuzzing of the Peer API in process: a caller that passes
 * anything to any entry point of a memory, file or tiered peer gets a
 * Packice error (never a TypeError, never INTERNAL), and after each case
 * its leases can all be released, no object is left unsealed, and the seeds
 * are unchanged. See `budget.ts` for budgets and replay.
 */
import { type BasePeer, FileSystemPeer, MemoryPeer, TieredPeer } from "../../mod.ts";
import { fuzz } from "./budget.ts";
import { peerProperty } from "./peer_property.ts";

const makers: Record<string, (dir: string) => Promise<BasePeer>> = {
  memory: () => Promise.resolve(new MemoryPeer({ capacity: 64 << 20, sweepInterval: 0 })),
  files: (dir) => FileSystemPeer.open({ dir, capacity: 64 << 20, sweepInterval: 0 }),
  tiers: (dir) =>
    TieredPeer.open({ dir, hotCapacity: 1 << 20, coldCapacity: 64 << 20, sweepInterval: 0 }),
};

for (const [kind, make] of Object.entries(makers)) {
  const name = `fuzz (${kind}): every Peer entry point answers garbage with a Packice error`;
  Deno.test(name, async () => {
    const dir = await Deno.makeTempDir({ prefix: "packice-fuzz-" });
    try {
      await using peer = await make(dir);
      await fuzz(name, await peerProperty(peer, () => peer.sweep()), 500);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
