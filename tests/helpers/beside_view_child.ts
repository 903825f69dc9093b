/**
 * Opens a view of an object the Unix-socket server stored in C (a
 * `BesideBlob`), drops every other reference to its memory, collects
 * garbage (run with `--v8-flags=--expose-gc`) and allocates buffers of the
 * same size filled with 0xee, then prints whether the view still shows the
 * object's bytes: for tests/backends/memory/beside_view_test.ts.
 */
import { Access, MemoryPeer } from "../../mod.ts";
import { udsClient } from "./uds_client.ts";
import { servePeer } from "./served_peer.ts";

const SIZE = 4096;
const gc = (globalThis as { gc?: () => void }).gc!;
await using daemon = await servePeer(new MemoryPeer());
await using client = await udsClient(daemon.path);
const bytes = new Uint8Array(SIZE).fill(0x5a);
const id = await client.put(bytes);
if (daemon.puts() !== 1) throw new Error("The put was not answered in C");
const { lease, blobs } = await daemon.peer.acquire(id, Access.READ);
const view = blobs[0]!.openView()!;
const filler: ArrayBuffer[] = [];
for (let round = 0; round < 5; round++) {
  gc();
  // Array buffers are swept on another thread, after the collection.
  await new Promise((resolve) => setTimeout(resolve, 20));
  for (let i = 0; i < 200; i++) {
    const buffer = new ArrayBuffer(SIZE);
    new Uint8Array(buffer).fill(0xee);
    filler.push(buffer);
  }
}
const changed = view.findIndex((byte) => byte !== 0x5a);
console.log(changed < 0 ? "intact" : `changed at ${changed}: ${view[changed]}`);
blobs[0]!.closeView(view);
await daemon.peer.release(lease.id);
