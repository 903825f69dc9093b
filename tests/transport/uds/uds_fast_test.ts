/**
 * The native fast path of a Unix-socket server (transport/uds/fast_opens.ts,
 * native/packice.c section 12): once an object has been read, its gets are
 * answered in C, with leases granted there, and every lease rule holds: the
 * right bytes and metadata, readers counted by the peer (a deleted object's
 * bytes stay until the last reader lets go, then go), a removed object never
 * answered from the table, object and lease deadlines.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { udsClient } from "../../helpers/uds_client.ts";
import {
  Access,
  Client,
  InvalidArgumentError,
  LeaseExpiredError,
  ManualClock,
  MemoryPeer,
  NotFoundError,
  UdsPeer,
  UdsServer,
  UnknownLeaseError,
  WrongAccessError,
} from "../../../mod.ts";
import {
  decodeOpenReply,
  openFrameRoom,
  writeOpenFrame,
} from "../../../transport/uds/open_frame.ts";
import { decodeJson, encodeFrame, Flag, Op } from "../../../transport/uds/protocol.ts";
import { RawConnection } from "../../helpers/uds_raw.ts";
import { openNative } from "../../helpers/native.ts";

const native = openNative();

/** A memory peer served on a socket, with the peer's options given. */
async function serve(options: ConstructorParameters<typeof MemoryPeer>[0] = {}) {
  const dir = await Deno.makeTempDir({ prefix: "packice-fast-" });
  const peer = new MemoryPeer(options);
  const server = await UdsServer.listen(peer, `${dir}/s.sock`);
  return {
    path: `${dir}/s.sock`,
    peer,
    server,
    /** OPENs answered in C so far. */
    native: () => server.metrics().uds_native_open_total!,
    async [Symbol.asyncDispose]() {
      await server.close();
      await peer.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Timed out waiting until ${what}`);
}

Deno.test({
  name: "a get answered in C gives the object's bytes and metadata, on any connection",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve();
    await using client = await udsClient(daemon.path);
    const bytes = new Uint8Array(4096).map((_, i) => (i * 7) & 255);
    await client.put(bytes, { id: "x", meta: { "content-type": "text/plain", n: 1 } });
    // The first read is the server's JS; it registers the object for C.
    (await client.get("x")).close();
    assertEquals(daemon.native(), 0);
    for (let i = 0; i < 3; i++) {
      using handle = await client.get("x");
      assertEquals(handle.bytes, bytes);
      assertEquals(handle.meta, { "content-type": "text/plain", n: 1 });
    }
    assertEquals(daemon.native(), 3);
    // Another connection's first get is answered in C too, with the info and the memfd.
    await using other = await udsClient(daemon.path);
    using handle = await other.get("x");
    assertEquals(handle.bytes, bytes);
    assertEquals(handle.size, 4096);
    assertEquals(daemon.native(), 4);
    const figures = await client.metrics();
    assertEquals(figures.hits_total, 5);
    assertEquals(figures['uds_requests_total{op="open"}'], 5);
    assertEquals(figures.uds_read_object_bytes_total, 5 * 4096);
  },
});

Deno.test({
  name: "a lease granted in C keeps a deleted object's bytes until its release frees them",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve();
    await using client = await udsClient(daemon.path);
    await client.put(new Uint8Array(8192).fill(3), { id: "d" });
    (await client.get("d")).close();
    const held = await client.get("d");
    assertEquals(daemon.native(), 1);
    assertEquals((await daemon.peer.stats()).leases, 1);
    await client.delete("d");
    assertEquals(await client.has("d"), false);
    // Out of lookups, but read: its bytes are still held, and still readable.
    assertEquals((await daemon.peer.stats()).bytes, 8192);
    assertEquals(held.bytes[8191], 3);
    held.close();
    await eventually(async () => (await daemon.peer.stats()).bytes === 0, "the bytes are freed");
    assertEquals((await daemon.peer.stats()).leases, 0);
  },
});

Deno.test({
  name: "a deleted or replaced object is never answered from C's table",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve();
    await using client = await udsClient(daemon.path);
    await client.put("first", { id: "r" });
    (await client.get("r")).close();
    (await client.get("r")).close();
    assertEquals(daemon.native(), 1);
    await client.delete("r");
    await assertRejects(() => client.get("r"), NotFoundError);
    await client.put("second!", { id: "r" });
    for (let i = 0; i < 2; i++) {
      using handle = await client.get("r");
      assertEquals(new TextDecoder().decode(handle.bytes), "second!");
    }
    // The new incarnation's second get was C's again.
    assertEquals(daemon.native(), 2);
  },
});

Deno.test({
  name: "an object past its deadline is not answered in C, and is removed",
  ignore: native === undefined,
  async fn() {
    const clock = new ManualClock(Date.now());
    await using daemon = await serve({ clock });
    await using client = await udsClient(daemon.path);
    await client.put("brief", { id: "t", ttl: 1000 });
    (await client.get("t")).close();
    (await client.get("t")).close();
    assertEquals(daemon.native(), 1);
    clock.advance(1000);
    await assertRejects(() => client.get("t"), NotFoundError);
    assertEquals(daemon.native(), 1);
    await eventually(async () => !(await client.has("t")), "the object is removed");
  },
});

Deno.test({
  name: "a lease granted in C that is renewed expires on the peer's clock, and ends",
  ignore: native === undefined,
  async fn() {
    const clock = new ManualClock(Date.now());
    await using daemon = await serve({ clock });
    await using client = await udsClient(daemon.path);
    await client.put("lease", { id: "l" });
    (await client.get("l")).close();
    using raw = new RawConnection(daemon.path);
    const room = new Uint8Array(openFrameRoom("l"));
    raw.sendRaw(room.subarray(0, writeOpenFrame(room, 1, { objectId: "l", known: 0 })));
    const opened = (await raw.receive())!;
    for (const fd of opened.fds) raw.native.symbols.pk_close(fd);
    const lease = decodeOpenReply(opened.frames[0]!.body)!.leaseId;
    assertEquals(daemon.native(), 1);
    assertEquals((await daemon.peer.stats()).leases, 1);
    raw.send(Op.RENEW, 2, JSON.stringify({ lease, ttl: 500 }));
    const renewed = decodeJson((await raw.receive())!.frames[0]!.body);
    assertEquals(renewed, {
      id: lease,
      objectId: "l",
      access: "READ",
      ttl: 500,
      expiresAt: clock.now() + 500,
    });
    clock.advance(500);
    // Past its deadline it ends, on release or on the sweep, whichever comes first.
    raw.send(Op.RELEASE, 3, lease);
    const refused = (await raw.receive())!.frames[0]!;
    assert(refused.header.flags & Flag.ERROR);
    assertEquals(
      (decodeJson(refused.body) as { code: string }).code,
      new LeaseExpiredError("").code,
    );
    assertEquals((await daemon.peer.stats()).leases, 0);
  },
});

Deno.test({
  name: "an object read under a lease granted in C is not evicted; once released it may be",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve({ capacity: 1000, mode: "cache" });
    await using client = await udsClient(daemon.path);
    await client.put(new Uint8Array(400).fill(1), { id: "a" });
    (await client.get("a")).close();
    const held = await client.get("a");
    assertEquals(daemon.native(), 1);
    await client.put(new Uint8Array(400).fill(2), { id: "b" });
    // No room for c: b goes, although a was read before b was put, as a is read.
    await client.put(new Uint8Array(400).fill(3), { id: "c" });
    assertEquals(await client.has("a"), true);
    assertEquals(await client.has("b"), false);
    assertEquals(held.bytes[399], 1);
    held.close();
    await eventually(async () => (await daemon.peer.stats()).leases === 0, "the lease ends");
    // Idle now and the least recently read: a goes for d, and is not answered in C after.
    await client.put(new Uint8Array(400).fill(4), { id: "d" });
    assertEquals(await client.has("a"), false);
    await assertRejects(() => client.get("a"), NotFoundError);
    assertEquals(daemon.native(), 1);
  },
});

Deno.test({
  name: "a get with a lease TTL is answered in C, and its lease expires on the peer's clock",
  ignore: native === undefined,
  async fn() {
    const clock = new ManualClock(Date.now());
    await using daemon = await serve({ clock });
    await using client = await udsClient(daemon.path);
    await client.put("timed", { id: "g" });
    (await client.get("g")).close();
    const held = await client.get("g", { ttl: 500 });
    assertEquals(daemon.native(), 1);
    assertEquals((await daemon.peer.stats()).leases, 1);
    clock.advance(500);
    // The sweep, once a second, ends it.
    await eventually(async () => (await daemon.peer.stats()).leases === 0, "the lease expires");
    held.close();
    // A TTL the peer refuses is refused as the peer does.
    using raw = new RawConnection(daemon.path);
    const room = new Uint8Array(openFrameRoom("g"));
    raw.sendRaw(room.subarray(0, writeOpenFrame(room, 7, { objectId: "g", known: 0, ttl: 0.5 })));
    const refused = (await raw.receive())!.frames[0]!;
    assert(refused.header.flags & Flag.ERROR);
    assertEquals(
      (decodeJson(refused.body) as { code: string }).code,
      new InvalidArgumentError("").code,
    );
    assertEquals(daemon.native(), 1);
  },
});

Deno.test({
  name: "gets answered in C to a client that reads late are queued, none lost",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve();
    await using client = await udsClient(daemon.path);
    await client.put("q", { id: "q" });
    (await client.get("q")).close();
    using raw = new RawConnection(daemon.path);
    const room = new Uint8Array(openFrameRoom("q"));
    const one = writeOpenFrame(room, 0, { objectId: "q", known: 0 });
    const frames = 100;
    const message = new Uint8Array(one * frames);
    // Sent without reading a reply, until the daemon stops reading: its replies fill the socket.
    let sent = 0;
    for (let i = 0; i < 400; i++) {
      for (let f = 0; f < frames; f++) {
        const at = f * one;
        writeOpenFrame(message.subarray(at, at + one), sent + f + 1, { objectId: "q", known: 0 });
      }
      if (raw.sendRaw(message) < 0) break;
      sent += frames;
    }
    const leases = new Set<string>();
    while (leases.size < sent) {
      const reply = await raw.receive();
      assert(reply !== undefined, `${leases.size} of ${sent} replies came`);
      assertEquals(reply.fds.length, reply.frames.length);
      for (const fd of reply.fds) raw.native.symbols.pk_close(fd);
      for (const { header, body } of reply.frames) {
        assertEquals(header.flags & Flag.ERROR, 0);
        leases.add(decodeOpenReply(body)!.leaseId);
      }
    }
    assert(daemon.native() === sent, `${daemon.native()} of ${sent} answered in C`);
    assert(daemon.server.metrics().uds_sent_bytes_total! > 0);
    assertEquals((await daemon.peer.stats()).leases, sent);
    for (const lease of leases) {
      const frame = encodeFrame(Op.RELEASE, 0, Flag.ONE_WAY, new TextEncoder().encode(lease));
      while (raw.sendRaw(frame) < 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await eventually(async () => (await daemon.peer.stats()).leases === 0, "every lease ends");
  },
});

Deno.test({
  name: "a lease granted in C used to seal or discard is refused as a READ lease, not unknown",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve();
    await using peer = await UdsPeer.connect(daemon.path);
    const client = new Client(peer);
    await client.put(new Uint8Array(100).fill(1), { id: "r" });
    (await client.get("r")).close();
    const acquired = await peer.acquire("r", Access.READ);
    assertEquals(daemon.native(), 1);
    assert(acquired.lease.id.startsWith("n"), acquired.lease.id);
    await assertRejects(() => peer.seal(acquired.lease.id), WrongAccessError, "READ lease");
    await assertRejects(() => peer.discard(acquired.lease.id), WrongAccessError, "READ lease");
    // Still a reader's lease, ended by its release; a made-up one of that shape is unknown.
    assertEquals((await daemon.peer.stats()).leases, 1);
    await peer.release(acquired.lease.id);
    await assertRejects(() => peer.seal(acquired.lease.id), UnknownLeaseError);
    assertEquals((await daemon.peer.stats()).leases, 0);
  },
});
