// Exits by an uncaught error while the memfd pool of an unclosed store is
// still preparing memfds on Deno's blocking thread pool.
import { createMemoryBlobStore } from "../../backends/memory/mod.ts";
import type { ObjectInfo } from "../../core/object.ts";

const MiB = 1024 * 1024;
const size = 4 * MiB;
const store = createMemoryBlobStore({ capacity: 320 * MiB, poolBytes: 64 * MiB });
const bytes = new Uint8Array(size).fill(7);
for (let i = 0; i < 10; i++) {
  const object: ObjectInfo = {
    id: `exit-${i}`,
    state: "CREATING",
    size,
    blobSizes: [size],
    meta: {},
    createdAt: 0,
  };
  const stored = await store.allocate(object);
  await stored.blobs[0]!.write(0, bytes);
  await store.seal(stored, object);
}
throw new Error("exit while the pool prepares memfds");
