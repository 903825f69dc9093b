import {
  CapacityExceededError,
  connect,
  FileSystemPeer,
  MemoryPeer,
  NotFoundError,
  type Peer,
} from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";

const peers: Array<[string, (mode: "cache" | "store") => Promise<Peer & { dir?: string }>]> = [
  [
    "MemoryPeer",
    (mode) => Promise.resolve(new MemoryPeer({ capacity: 1000, mode, sweepInterval: 0 })),
  ],
  ["FileSystemPeer", async (mode) => {
    const dir = await Deno.makeTempDir({ prefix: "packice-cache-" });
    const peer = await FileSystemPeer.open({ dir, capacity: 1000, mode, sweepInterval: 0 });
    return Object.assign(peer, { dir });
  }],
];

for (const [name, open] of peers) {
  Deno.test(`${name} in cache mode drops the least recently read idle objects to make room`, async () => {
    const peer = await open("cache");
    try {
      await using client = await connect(peer);
      const a = await client.put(new Uint8Array(300).fill(1), { id: "a" });
      const b = await client.put(new Uint8Array(300).fill(2), { id: "b" });
      const c = await client.put(new Uint8Array(300).fill(3), { id: "c" });
      // a is read, so b is the least recently used now.
      (await client.get(a)).close();
      await client.put(new Uint8Array(300).fill(4), { id: "d" });
      assertEquals(await client.has(b), false);
      assertEquals(await client.has(a), true);
      assertEquals(await client.has(c), true);
      // A lease keeps an object: c is held, so a goes although c is older.
      using held = await client.get(c);
      (await client.get("d")).close();
      (await client.get(a)).close();
      await client.put(new Uint8Array(300).fill(5), { id: "e" });
      assertEquals(await client.has(c), true);
      assertEquals(await client.has("d"), false);
      assertEquals(held.bytes[0], 3);
      const stats = await peer.stats();
      assertEquals(stats.evictions, 2);
      assert(stats.bytes <= 1000, `${stats.bytes} bytes held`);
      // Room that idle objects cannot make is refused, and nothing is dropped for it.
      await assertRejects(() => client.put(new Uint8Array(1001)), CapacityExceededError);
      const before = (await client.list()).length;
      await assertRejects(() => client.put(new Uint8Array(900)), CapacityExceededError);
      assertEquals((await client.list()).length, before);
    } finally {
      await peer.close();
      if (peer.dir) await Deno.remove(peer.dir, { recursive: true });
    }
  });

  Deno.test(`${name} in store mode refuses new objects when full`, async () => {
    const peer = await open("store");
    try {
      await using client = await connect(peer);
      await client.put(new Uint8Array(600));
      await assertRejects(() => client.put(new Uint8Array(600)), CapacityExceededError);
      assertEquals((await peer.stats()).evictions, 0);
    } finally {
      await peer.close();
      if (peer.dir) await Deno.remove(peer.dir, { recursive: true });
    }
  });
}

Deno.test("MemoryPeer counts a hit per READ lease and a miss per object not found", async () => {
  await using peer = new MemoryPeer({ sweepInterval: 0 });
  await using client = await connect(peer);
  const id = await client.put("x");
  for (let i = 0; i < 5; i++) (await client.get(id)).close();
  await assertRejects(() => client.get("absent"), NotFoundError);
  const stats = await peer.stats();
  assertEquals(stats.hits, 5);
  assertEquals(stats.misses, 1);
});
