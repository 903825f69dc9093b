import { CapacityExceededError, connect, MemoryPeer } from "../../mod.ts";
import { loadNative } from "../../native/load.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { lifecycleSuite } from "../helpers/lifecycle_suite.ts";

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

Deno.test({
  name: "MemoryPeer putObject keeps chunks given up with transfer, and copies others",
  // Without the native library the heap store copies: only memfd stores take chunks over.
  ignore: loadNative() === undefined,
}, async () => {
  await using peer = new MemoryPeer({ sweepInterval: 0 });
  const given = new Uint8Array(1000).fill(4);
  const info = await peer.putObject([given], 1000, { transfer: true });
  assertEquals(info.state, "SEALED");
  assertEquals(given.length, 0);
  const kept = new Uint8Array(1000).fill(5);
  const copied = await peer.putObject([kept], 1000, {});
  assertEquals(kept, new Uint8Array(1000).fill(5));
  await using client = await connect(peer);
  // A user's bytes are never given up, even when asked in untyped code.
  const mine = new Uint8Array(1000).fill(6);
  const put = await client.put(mine, { transfer: true } as never);
  assertEquals(mine, new Uint8Array(1000).fill(6));
  for (const [id, byte] of [[info.id, 4], [copied.id, 5], [put, 6]] as const) {
    using handle = await client.get(id);
    assertEquals(handle.bytes, new Uint8Array(1000).fill(byte));
  }
});
