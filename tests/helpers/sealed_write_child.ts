/**
 * Writes into `handle.bytes` of a sealed object and reports what happened,
 * for tests/peers/sealed_immutable_test.ts.
 *
 * - `local SIZE`: an object of SIZE bytes on a MemoryPeer in this process.
 * - `socket PATH ID`: the object ID of the daemon on PATH.
 */
import { connect } from "../../mod.ts";

const [mode, ...args] = Deno.args;
await using client = await connect(mode === "socket" ? args[0] : undefined);
const id = mode === "socket"
  ? args[1]!
  : await client.put(new Uint8Array(Number(args[0])).fill(104));
using handle = await client.get(id);
console.log("writing");
try {
  handle.bytes[0] = 74;
  console.log(`wrote: ${handle.bytes[0]}`);
} catch (error) {
  console.log(`threw: ${(error as Error).name}: ${(error as Error).message}`);
}
using again = await client.get(id);
console.log(`object: ${again.bytes[0]}`);
