import {
  AlreadyExistsError,
  AlreadySealedError,
  ClosedError,
  connect,
  InvalidArgumentError,
  LeaseExpiredError,
  ManualClock,
  MemoryPeer,
  NotFoundError,
  NotSealedError,
} from "../../mod.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../helpers/assert.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("connect() put and get round-trip bytes, strings and metadata", async () => {
  await using client = await connect();
  const id = await client.put(new Uint8Array([1, 2, 3]), { meta: { kind: "raw" } });
  using handle = await client.get(id);
  assertEquals(handle.bytes, new Uint8Array([1, 2, 3]));
  assertEquals([handle.id, handle.size, handle.meta], [id, 3, { kind: "raw" }]);
  const named = await client.put("hello", { id: "greeting" });
  assertEquals(named, "greeting");
  using greeting = await client.get("greeting");
  assertEquals(text(greeting.bytes), "hello");
});

Deno.test("put() takes a stream of chunks", async () => {
  await using client = await connect();
  const chunks = ["ab", "cde", "", "f"].map((s) => new TextEncoder().encode(s));
  const id = await client.put(ReadableStream.from(chunks));
  using handle = await client.get(id);
  assertEquals(text(handle.bytes), "abcdef");
});

Deno.test("stream() yields copies that outlive the handle", async () => {
  await using client = await connect();
  const data = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => i % 251);
  const id = await client.put(data);
  const handle = await client.get(id);
  const chunks = await Array.fromAsync(handle.stream());
  await handle.close();
  assert(chunks.length > 1);
  const joined = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  assertEquals(joined, data);
});

Deno.test("create() writes in place through buffer or with write(), then seals", async () => {
  await using client = await connect();
  const writer = await client.create(6, { id: "parts" });
  if (writer.buffer) {
    writer.buffer.set([1, 2, 3]);
    await writer.write(new Uint8Array([4, 5, 6]), 3);
  } else {
    await writer.write(new Uint8Array([1, 2, 3]));
    await writer.write(new Uint8Array([4, 5, 6]));
  }
  await assertRejects(() => client.get("parts"), NotSealedError);
  const info = await writer.seal();
  assertEquals(info.state, "SEALED");
  assertEquals(writer.buffer?.length ?? 0, 0);
  await assertRejects(() => writer.write(new Uint8Array(1)), AlreadySealedError);
  using handle = await client.get("parts");
  assertEquals(handle.bytes, new Uint8Array([1, 2, 3, 4, 5, 6]));
});

Deno.test("a writer disposed without seal discards its object", async () => {
  await using client = await connect();
  {
    await using writer = await client.create(4, { id: "draft" });
    await writer.write(new Uint8Array(4));
    assert(await client.has("draft"));
  }
  assertEquals(await client.has("draft"), false);
  const again = await client.create(1, { id: "draft" });
  await again.abort();
  await again.abort();
});

Deno.test("write() past the size is refused", async () => {
  await using client = await connect();
  await using writer = await client.create(2);
  await assertRejects(() => writer.write(new Uint8Array(3)), InvalidArgumentError);
  await assertRejects(() => writer.write(new Uint8Array(1), 2), InvalidArgumentError);
  // Through the zero-copy buffer too, which the writer fills itself.
  assert(writer.buffer !== undefined);
  await assertRejects(() => writer.write(new Uint8Array(3)), InvalidArgumentError);
  await assertRejects(() => writer.write(new Uint8Array(1), 2), InvalidArgumentError);
  await assertRejects(() => writer.write(new Uint8Array(1), -1), InvalidArgumentError);
  await assertRejects(() => writer.write(new Uint8Array(1), 0.5), InvalidArgumentError);
  await writer.write(new Uint8Array([7, 8]));
  assertEquals([...writer.buffer], [7, 8]);
});

Deno.test("delete() hides an object at once while open handles keep their bytes", async () => {
  await using client = await connect();
  await client.put("still here", { id: "doc" });
  const handle = await client.get("doc");
  await client.delete("doc");
  assertEquals(await client.has("doc"), false);
  await assertRejects(() => client.get("doc"), NotFoundError);
  await assertRejects(() => client.delete("doc"), NotFoundError);
  assertEquals(text(handle.bytes), "still here");
  await handle.close();
  assertEquals(handle.bytes.length === 0 || text(handle.bytes) === "still here", true);
  assertEquals((await client.peer.stats()).bytes, 0);
});

Deno.test("put() of an existing id is refused and the original stays", async () => {
  await using client = await connect();
  await client.put("first", { id: "x" });
  await assertRejects(() => client.put("second", { id: "x" }), AlreadyExistsError);
  using handle = await client.get("x");
  assertEquals(text(handle.bytes), "first");
});

Deno.test("stat(), list() and has() describe objects", async () => {
  await using client = await connect();
  await client.put("aa", { id: "a" });
  await client.put("bbb", { id: "b", meta: { n: 1 } });
  assertEquals((await client.list()).map((o) => o.id).sort(), ["a", "b"]);
  const b = await client.stat("b");
  assertEquals([b.size, b.meta, b.state], [3, { n: 1 }, "SEALED"]);
  assertEquals(await client.has("c"), false);
  await assertRejects(() => client.stat("c"), NotFoundError);
});

Deno.test("memory:// peers are shared by name within the process", async () => {
  const first = await connect("memory://shared-test");
  const second = await connect("memory://shared-test");
  const other = await connect("memory://other-test");
  await first.put("shared", { id: "s" });
  assert(await second.has("s"));
  assertEquals(await other.has("s"), false);
  await first.close();
  assert(await second.has("s"));
  await second.close();
  await other.close();
  await using fresh = await connect("memory://shared-test");
  assertEquals(await fresh.has("s"), false);
});

Deno.test("connect(peer) does not close the peer it was given", async () => {
  await using peer = new MemoryPeer({ sweepInterval: 0 });
  const client = await connect(peer);
  await client.put("x", { id: "x" });
  await client.close();
  await client.close();
  assert(await peer.has("x"));
  await assertRejects(() => client.get("x"), ClosedError);
});

Deno.test("a handle closes once and detaches its zero-copy view", async () => {
  await using client = await connect();
  const id = await client.put(new Uint8Array(4096).fill(5));
  const handle = await client.get(id);
  const bytes = handle.bytes;
  await handle.close();
  await handle.close();
  assert(handle.closed);
  assertEquals((await client.peer.stats()).leases, 0);
  // Views of mapped memory drop to length 0; plain memory is left as it was.
  assert(bytes.length === 0 || bytes[0] === 5);
});

Deno.test("connect() refuses unknown targets with a typed error", async () => {
  await assertRejects(() => connect("ftp://example"), InvalidArgumentError);
  await assertRejects(() => connect("memory://"), InvalidArgumentError);
});

Deno.test("seal() after the CREATE lease expired fails and discards the object", async () => {
  const clock = new ManualClock(0);
  await using peer = new MemoryPeer({ clock, sweepInterval: 0 });
  await using client = await connect(peer);
  const writer = await client.create(3, { id: "late", ttl: 100 });
  await writer.write(new Uint8Array([1, 2, 3]));
  clock.advance(100);
  await assertRejects(() => writer.seal(), LeaseExpiredError);
  await assertRejects(() => writer.write(new Uint8Array(1)), ClosedError);
  await peer.sweep();
  assertEquals(await client.has("late"), false);
  assertEquals((await peer.stats()).leases, 0);
});

Deno.test("handle.stream(range) streams those bytes only, across chunks", async () => {
  await using client = await connect();
  const bytes = new Uint8Array(3 << 20).map((_, i) => i % 251);
  const id = await client.put(bytes);
  const read = async (range?: { start: number; end: number }) =>
    new Uint8Array(await new Response((await client.get(id)).stream(range)).arrayBuffer());
  assertEquals(await read({ start: 5, end: (2 << 20) + 7 }), bytes.subarray(5, (2 << 20) + 7));
  assertEquals(await read({ start: 3 << 20, end: 3 << 20 }), new Uint8Array());
  assertEquals((await read()).length, bytes.length);
  const handle = await client.get(id);
  assertThrows(() => handle.stream({ start: 1, end: (3 << 20) + 1 }), InvalidArgumentError);
  await handle.close();
});
