import {
  Access,
  connect,
  FileSystemPeer,
  ManualClock,
  MemoryPeer,
  NotFoundError,
  objectDeadline,
} from "../../mod.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";

Deno.test("objectDeadline counts a TTL from the create", () => {
  assertEquals(objectDeadline(1000, 500), 1500);
  assertEquals(objectDeadline(1000, undefined), undefined);
});

Deno.test("a sealed object with a TTL leaves lookups at its deadline; readers keep their bytes", async () => {
  const clock = new ManualClock(10_000);
  await using peer = new MemoryPeer({ clock, sweepInterval: 0 });
  await using client = await connect(peer);
  const id = await client.put("hello", { ttl: 1000 });
  const kept = await client.put("kept");
  assertEquals((await client.stat(id)).expiresAt, 11_000);
  clock.advance(999);
  using reader = await client.get(id);
  clock.advance(1);
  // At the deadline, before any timer or sweep ran.
  assertEquals(await client.has(id), false);
  await assertRejects(() => client.stat(id), NotFoundError);
  await assertRejects(() => client.get(id), NotFoundError);
  assertEquals((await client.list()).map((info) => info.id), [kept]);
  assertEquals(new TextDecoder().decode(reader.bytes), "hello");
  await peer.sweep();
  assertEquals((await peer.stats()).expirations, 1);
  assertEquals((await peer.stats()).bytes, 5 + 4);
  await reader.close();
  assertEquals((await peer.stats()).bytes, 4);
  // The id is free again.
  await client.put("again", { id });
  assertEquals(await client.has(id), true);
});

Deno.test("a TTL on create also bounds an object never sealed", async () => {
  const clock = new ManualClock(0);
  await using peer = new MemoryPeer({ clock, sweepInterval: 0 });
  const { lease } = await peer.acquire("slow", Access.CREATE, { size: 3, objectTtl: 50 });
  clock.advance(50);
  await peer.sweep();
  assertEquals(await peer.has("slow"), false);
  await peer.release(lease.id);
  assertEquals((await peer.stats()).bytes, 0);
});

Deno.test("objects expire on one timer, in real time", async () => {
  await using peer = new MemoryPeer({ sweepInterval: 0 });
  await using client = await connect(peer);
  const late = await client.put("late", { ttl: 400 });
  const early = await client.put("early", { ttl: 40 });
  const deadline = Date.now() + 2000;
  // Nothing looks the objects up meanwhile: only the timer can remove them.
  while ((await peer.stats()).expirations === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assertEquals((await peer.stats()).expirations, 1);
  assertEquals(await peer.has(early), false);
  assertEquals(await peer.has(late), true);
});

Deno.test("a FileSystemPeer keeps an object's deadline across a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "packice-ttl-" });
  try {
    const clock = new ManualClock(0);
    {
      await using peer = await FileSystemPeer.open({ dir, clock, sweepInterval: 0 });
      await using client = await connect(peer);
      await client.put("short", { id: "short", ttl: 100 });
      await client.put("long", { id: "long" });
    }
    clock.advance(100);
    await using peer = await FileSystemPeer.open({ dir, clock, sweepInterval: 0 });
    assertEquals(await peer.has("short"), false);
    assertEquals(await peer.has("long"), true);
    await peer.sweep();
    assertEquals((await peer.stats()).objects, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
