/**
 * A process that writes objects into a tiered peer until it is killed, for
 * the crash tests. Usage:
 *
 *   tiered_child.ts DIR MODE SIZE HOT
 *
 * Writes objects `k0`, `k1`, … of SIZE bytes, each filled with `pattern(id)`,
 * into a TieredPeer on DIR in MODE (store or cache) with HOT bytes of memory
 * that demotes down to nothing, and prints `sealed <id> <demotions so far>`
 * once each put has resolved. It never stops by itself.
 */
import { connect, TieredPeer } from "../../mod.ts";
import { pattern } from "./tiered.ts";

const [dir, mode, size, hot] = Deno.args;
const peer = await TieredPeer.open({
  dir: dir!,
  mode: mode as "store" | "cache",
  hotCapacity: Number(hot),
  lowWatermark: 0,
  sweepInterval: 0,
});
const client = await connect(peer);
const encoder = new TextEncoder();
for (let i = 0;; i++) {
  const id = await client.put(pattern(`k${i}`, Number(size)), { id: `k${i}` });
  const { demotions } = await peer.tierStats();
  Deno.stdout.writeSync(encoder.encode(`sealed ${id} ${demotions}\n`));
}
