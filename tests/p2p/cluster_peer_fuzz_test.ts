/**
 * The fuzzing of `tests/fuzz/peer_fuzz_test.ts`, on a cluster peer: garbage
 * to any entry point of a `ClusterPeer` (over memory peers and an in-memory
 * directory) gets a Packice error, never a TypeError or INTERNAL, and leaves
 * no lease, no unsealed object and the seeds unchanged.
 */
import { ClusterPeer, MemoryPeer } from "../../mod.ts";
import { memoryDirectory } from "../helpers/memory_directory.ts";
import { fuzz } from "../fuzz/budget.ts";
import { peerProperty } from "../fuzz/peer_property.ts";

const name = "fuzz (cluster): every ClusterPeer entry point answers garbage with a Packice error";
Deno.test(name, async () => {
  const home = new MemoryPeer({ capacity: 64 << 20, sweepInterval: 0 });
  await using peer = new ClusterPeer({
    home,
    replicas: new MemoryPeer({ capacity: 64 << 20, sweepInterval: 0 }),
    directory: memoryDirectory(new Map()),
    node: "fuzzed",
    address: "http://127.0.0.1:9",
  });
  await fuzz(name, await peerProperty(peer, () => home.sweep()), 300);
});
