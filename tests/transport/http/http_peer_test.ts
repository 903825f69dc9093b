/**
 * The remote client: `connect("http://...")` and {@link HttpPeer} against a
 * real server on a free loopback port, compared with the same peer in process.
 */
import {
  Access,
  AlreadyExistsError,
  AlreadySealedError,
  CapacityExceededError,
  ClosedError,
  connect,
  HttpPeer,
  InvalidArgumentError,
  LeaseExpiredError,
  MemoryPeer,
  NotFoundError,
  NotSealedError,
  type PackiceError,
  type Peer,
  serveHttp,
  StoreUnavailableError,
  UnauthorizedError,
  UnknownLeaseError,
  WrongAccessError,
} from "../../../mod.ts";
import { startHttp } from "../../helpers/http_fixture.ts";
import { runDenoScript } from "../../helpers/deno_script.ts";
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function pattern(length: number, seed = 0): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 13 + seed) & 255;
  return bytes;
}

Deno.test("connect(http://) gives the client API: put, get, stat, list, has, delete", async () => {
  await using fixture = startHttp();
  await using client = await connect(fixture.server.url);
  const id = await client.put("hello", { id: "greeting", meta: { "content-type": "text/plain" } });
  assertEquals(id, "greeting");
  {
    await using handle = await client.get(id);
    assertEquals(decoder.decode(handle.bytes), "hello");
    assertEquals([handle.size, handle.meta], [5, { "content-type": "text/plain" }]);
    assertEquals(handle.info.state, "SEALED");
  }
  const fresh = await client.put(new Uint8Array([1, 2, 3]).buffer);
  assertEquals((await client.stat(fresh)).size, 3);
  assertEquals((await client.list()).map((info) => info.id).sort(), [fresh, "greeting"].sort());
  assert(await client.has(id));
  await client.delete(id);
  assertEquals(await client.has(id), false);
  assertEquals((await fixture.peer.stats()).leases, 0);
});

Deno.test("a large object round-trips through put, get and stream", async () => {
  await using fixture = startHttp();
  await using client = await connect(fixture.server.url);
  const bytes = pattern(24 << 20, 5);
  const id = await client.put(bytes);
  await using handle = await client.get(id);
  assertEquals(handle.bytes.length, bytes.length);
  assert(handle.bytes.every((byte, i) => byte === bytes[i]), "the bytes match");
  let at = 0;
  for await (const chunk of handle.stream()) {
    assert(chunk.every((byte, i) => byte === bytes[at + i]), `chunk at ${at}`);
    at += chunk.length;
  }
  assertEquals(at, bytes.length);
});

Deno.test("put streams a ReadableStream of chunks with its size", async () => {
  await using fixture = startHttp();
  await using client = await connect(fixture.server.url);
  const id = await client.put(ReadableStream.from(["ab", "cd", "e"].map((s) => encoder.encode(s))));
  await using handle = await client.get(id);
  assertEquals(decoder.decode(handle.bytes), "abcde");
});

Deno.test("an ObjectWriter writes parts over HTTP and seals; aborting discards", async () => {
  await using fixture = startHttp();
  await using client = await connect(fixture.server.url);
  {
    await using writer = await client.create(6, { id: "parts", meta: { n: 1 } });
    assertEquals(writer.buffer, undefined);
    await writer.write(encoder.encode("abc"));
    await writer.write(encoder.encode("def"));
    const info = await writer.seal();
    assertEquals([info.state, info.meta], ["SEALED", { n: 1 }]);
  }
  await using handle = await client.get("parts");
  assertEquals(decoder.decode(handle.bytes), "abcdef");
  {
    await using writer = await client.create(4, { id: "dropped" });
    await writer.write(encoder.encode("ab"));
    await writer.abort();
  }
  assertEquals(await client.has("dropped"), false);
  assertEquals((await fixture.peer.stats()).leases, 1);
});

Deno.test("blob reads and writes under a lease move ranges over HTTP", async () => {
  await using fixture = startHttp();
  await using peer = await HttpPeer.connect(fixture.server.url);
  const { lease, blobs, object } = await peer.acquire("m", Access.CREATE, { size: [3, 5] });
  assertEquals([object.blobSizes, blobs.length, blobs[0]!.openView()], [[3, 5], 2, undefined]);
  await blobs[0]!.write(0, encoder.encode("abc"));
  await blobs[1]!.write(2, encoder.encode("fgh"));
  await blobs[1]!.write(0, encoder.encode("de"));
  assertEquals(decoder.decode(await blobs[1]!.read(1, 3)), "efg");
  assertEquals(await blobs[1]!.read(5, 0), new Uint8Array(0));
  await assertRejects(() => blobs[0]!.write(2, encoder.encode("xy")), InvalidArgumentError);
  await assertRejects(() => blobs[0]!.read(-1, 1), InvalidArgumentError);
  await peer.seal(lease.id);
  await assertRejects(() => blobs[0]!.write(0, encoder.encode("x")), AlreadySealedError);
  await peer.release(lease.id);
  await assertRejects(() => blobs[0]!.read(0, 1), UnknownLeaseError);
  const read = await peer.acquire("m", Access.READ, { ttl: 1000 });
  assertEquals(read.lease.ttl, 1000);
  assertEquals(decoder.decode(await read.blobs[0]!.read(0, 3)), "abc");
  await assertRejects(() => read.blobs[0]!.write(0, encoder.encode("x")), WrongAccessError);
  await peer.release(read.lease.id);
});

/** Runs `action` against a peer in process and over HTTP; both must throw the same class. */
async function sameError(
  action: (peer: Peer) => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => PackiceError,
  setup: (peer: Peer) => Promise<void> = async () => {},
): Promise<void> {
  await using fixture = startHttp({ capacity: 1024 });
  await using remote = await HttpPeer.connect(fixture.server.url);
  await setup(fixture.peer);
  const local = await assertRejects(() => action(fixture.peer), ErrorClass);
  const overHttp = await assertRejects(() => action(remote), ErrorClass);
  assertEquals(overHttp.code, local.code);
}

async function sealedObject(peer: Peer, id = "a"): Promise<void> {
  const { lease } = await peer.acquire(id, Access.CREATE, { size: 1 });
  await peer.seal(lease.id);
  await peer.release(lease.id);
}

Deno.test("errors from the server arrive as the same classes as in process", async () => {
  await sameError((peer) => peer.acquire("nope", Access.READ), NotFoundError);
  await sameError((peer) => peer.stat("nope"), NotFoundError);
  await sameError(
    (peer) => peer.acquire("a", Access.CREATE, { size: 1 }),
    AlreadyExistsError,
    sealedObject,
  );
  await sameError((peer) => peer.acquire("b", Access.READ), NotSealedError, async (peer) => {
    await peer.acquire("b", Access.CREATE, { size: 1 });
  });
  await sameError(
    async (peer) => {
      const { lease } = await peer.acquire("a", Access.READ);
      try {
        await peer.seal(lease.id);
      } finally {
        await peer.release(lease.id);
      }
    },
    WrongAccessError,
    sealedObject,
  );
  await sameError(async (peer) => {
    const { lease } = await peer.acquire(undefined, Access.CREATE, { size: 1 });
    await peer.seal(lease.id);
    try {
      await peer.seal(lease.id);
    } finally {
      await peer.release(lease.id);
    }
  }, AlreadySealedError);
  await sameError((peer) => peer.release("no-such-lease"), UnknownLeaseError);
  await sameError(
    (peer) => peer.acquire("x", Access.CREATE, { size: 4096 }),
    CapacityExceededError,
  );
  for (const id of ["", "..", "a/b", "x\n"]) {
    await sameError((peer) => peer.acquire(id, Access.READ), InvalidArgumentError);
    await sameError((peer) => peer.stat(id), InvalidArgumentError);
  }
  await sameError(
    // deno-lint-ignore no-explicit-any
    (peer) => peer.acquire("m", Access.CREATE, { size: 1, meta: [] as any }),
    InvalidArgumentError,
  );
  await sameError((peer) => peer.acquire("s", Access.CREATE, { size: -1 }), InvalidArgumentError);
});

Deno.test("an expired lease is reported as LeaseExpiredError", async () => {
  await using fixture = startHttp();
  await using peer = await HttpPeer.connect(fixture.server.url);
  const { lease } = await peer.acquire("e", Access.CREATE, { size: 1, ttl: 100 });
  fixture.clock.advance(100);
  await fixture.peer.sweep();
  await assertRejects(() => peer.seal(lease.id), LeaseExpiredError);
  assertEquals(await peer.has("e"), false);
});

Deno.test("a wrong token fails at connect with UnauthorizedError; the right one works", async () => {
  await using fixture = startHttp({ token: "s3cret" });
  const missing = await assertRejects(() => connect(fixture.server.url), UnauthorizedError);
  // What to do, beside what the server said.
  assert(missing.message.includes("Missing bearer token"), missing.message);
  assert(missing.message.includes("{ token }") && missing.message.includes("PACKICE_TOKEN"));
  await assertRejects(() => connect(fixture.server.url, { token: "guess" }), UnauthorizedError);
  await using client = await connect(fixture.server.url, { token: "s3cret" });
  assertEquals(await client.has("x"), false);
});

Deno.test("connect fails with StoreUnavailableError, not NOT_FOUND, where no server answers; bad URLs are refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  await assertRejects(() => connect(`http://127.0.0.1:${port}`), StoreUnavailableError);
  await assertRejects(() => connect("ftp://example.org"), InvalidArgumentError);
});

Deno.test("leases without a TTL are renewed while held; closing the peer releases them", async () => {
  // The real clock here: the server's 600 ms TTL passes twice while the writer waits.
  await using peer = new MemoryPeer({ capacity: 1 << 20, sweepInterval: 20 });
  await using server = serveHttp(peer, { port: 0, leaseTtl: 600 });
  const remote = await HttpPeer.connect(server.url);
  try {
    const { lease, blobs } = await remote.acquire("slow", Access.CREATE, { size: 2 });
    assertEquals(lease.ttl, 600);
    const write = await remote.acquire("slow", Access.WRITE, { ttl: 600 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // The CREATE lease was kept alive; the WRITE lease with its own TTL was not.
    await blobs[0]!.write(0, encoder.encode("ok"));
    await assertRejects(() => remote.renew(write.lease.id), LeaseExpiredError);
    await remote.seal(lease.id);
    const held = await remote.acquire("slow", Access.READ);
    assertEquals((await peer.stats()).leases, 2);
    await remote.close();
    await remote.close();
    assertEquals((await peer.stats()).leases, 0);
    assertEquals((await peer.stat("slow")).state, "SEALED");
    await assertRejects(() => remote.stat("slow"), ClosedError);
    await assertRejects(() => held.blobs[0]!.read(0, 1), ClosedError);
  } finally {
    await remote.close();
  }
});

Deno.test("closing the remote client discards its unsealed objects", async () => {
  await using fixture = startHttp();
  const client = await connect(fixture.server.url);
  const writer = await client.create(4, { id: "half" });
  await writer.write(encoder.encode("ha"));
  await client.close();
  assertEquals(await fixture.peer.has("half"), false);
  assertEquals((await fixture.peer.stats()).leases, 0);
});

Deno.test("16 remote clients work concurrently", async () => {
  await using fixture = startHttp();
  await Promise.all(Array.from({ length: 16 }, async (_, n) => {
    await using client = await connect(fixture.server.url);
    for (let round = 0; round < 5; round++) {
      const bytes = pattern(10_000 + n * 100 + round, n);
      const id = await client.put(bytes);
      await using handle = await client.get(id);
      assertEquals(handle.bytes, bytes);
      await client.delete(id);
    }
  }));
  assertEquals((await fixture.peer.stats()).objects, 0);
});

Deno.test("a server that goes away mid-session gives ClosedError, as a closed socket does", async () => {
  await using peer = new MemoryPeer({ capacity: 1 << 20 });
  const server = serveHttp(peer, { port: 0 });
  await using client = await connect(server.url);
  await client.put("x", { id: "x" });
  await server.close();
  await assertRejects(() => client.stat("x"), ClosedError);
});

Deno.test("metadata over the limit is refused with INVALID_ARGUMENT by put as by create", async () => {
  await using fixture = startHttp();
  await using client = await connect(fixture.server.url);
  // Sent in a header, which the server's HTTP layer refused before its handler saw it.
  const meta = { big: "x".repeat(100_000) };
  await assertRejects(() => client.put("a", { meta }), InvalidArgumentError);
  await assertRejects(() => client.put(new Uint8Array(2 << 20), { meta }), InvalidArgumentError);
  await assertRejects(() => client.create(1, { meta }), InvalidArgumentError);
  assertEquals(await client.list(), []);
});

Deno.test("a put or a write of one large array costs the client no copy of it", async () => {
  await using fixture = startHttp({ capacity: 256 << 20 });
  const size = 64 << 20;
  // In a process of its own, whose peak resident memory says what the request held.
  const grew = async (how: string) =>
    Number(
      await runDenoScript(
        `
        import { connect } from ${JSON.stringify(new URL("../../../mod.ts", import.meta.url).href)};
        const peak = () => Number(/VmHWM:\\s+(\\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1]) * 1024;
        await using client = await connect(${JSON.stringify(fixture.server.url)});
        const bytes = new Uint8Array(${size}).fill(7);
        await client.put("warm");
        const before = peak();
        if (${JSON.stringify(how)} === "put") await client.put(bytes);
        else {
          await using writer = await client.create(bytes.length);
          await writer.write(bytes);
          await writer.seal();
        }
        console.log(peak() - before);
      `,
        ["--allow-all"],
      ),
    );
  for (const how of ["put", "write"]) {
    const growth = await grew(how);
    assert(growth < size / 4, `${how}: the client grew by ${growth} bytes for ${size}`);
  }
  const sizes = (await fixture.peer.list()).map((info) => info.size).sort((a, b) => a - b);
  assertEquals(sizes, [4, 4, size, size]);
});
