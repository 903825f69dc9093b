import { CapacityExceededError, connect, MemoryPeer } from "../mod.ts";
import { assertEquals, assertRejects } from "./helpers/assert.ts";
import { lifecycleSuite } from "./helpers/lifecycle_suite.ts";

lifecycleSuite(
  "MemoryPeer",
  {},
  (clock) => Promise.resolve(new MemoryPeer({ clock, sweepInterval: 0 })),
);

Deno.test("MemoryPeer refuses objects beyond its capacity and keeps what it has", async () => {
  await using client = await connect(new MemoryPeer({ capacity: 1000, sweepInterval: 0 }));
  await using _peer = client.peer;
  const kept = await client.put(new Uint8Array(600).fill(1));
  await assertRejects(() => client.put(new Uint8Array(500)), CapacityExceededError);
  await assertRejects(() => client.create(2000), CapacityExceededError);
  using handle = await client.get(kept);
  assertEquals(handle.bytes, new Uint8Array(600).fill(1));
  assertEquals((await client.peer.stats()).bytes, 600);
});

Deno.test("MemoryPeer frees capacity when objects are deleted", async () => {
  await using peer = new MemoryPeer({ capacity: 1000, sweepInterval: 0 });
  await using client = await connect(peer);
  for (let i = 0; i < 20; i++) {
    const id = await client.put(new Uint8Array(900));
    await client.delete(id);
  }
  assertEquals((await peer.stats()).bytes, 0);
});
