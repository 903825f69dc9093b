/**
 * Small puts answered in C (transport/uds/fast_opens.ts, native/packice.c
 * section 13): a plain PUT of a peer that takes objects stored beside it is
 * stored and answered in C, and the object is the peer's as any put's would
 * be: listed, stat'ed, read in process, over the socket and over HTTP,
 * deleted, evicted, counted, within capacity, and still the peer's after the
 * server has gone.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { udsClient } from "../../helpers/uds_client.ts";
import {
  Access,
  CapacityExceededError,
  FileSystemPeer,
  MemoryPeer,
  NotFoundError,
  ProtocolError,
  serveHttp,
  UdsServer,
} from "../../../mod.ts";
import { Flag, HEADER_SIZE, Op } from "../../../transport/uds/protocol.ts";
import { FULL_SEALS } from "../../../backends/memory/seals.ts";
import { encodePutFrame } from "../../helpers/uds_frames.ts";
import { RawConnection } from "../../helpers/uds_raw.ts";
import { openNative } from "../../helpers/native.ts";
import { pattern } from "../../helpers/pattern.ts";
import { servePeer } from "../../helpers/served_peer.ts";

const native = openNative();

function serve(peer: MemoryPeer | FileSystemPeer = new MemoryPeer()) {
  return servePeer(peer);
}

Deno.test({
  name: "a plain small put is answered in C and the object is the peer's, as any put's",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve();
    await using client = await udsClient(daemon.path);
    const bytes = pattern(4096, 1);
    const id = await client.put(bytes);
    assertEquals(daemon.puts(), 1);
    assert(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id), id);
    const info = await client.stat(id);
    assertEquals(info, await daemon.peer.stat(id));
    assertEquals(info.state, "SEALED");
    assertEquals(info.size, 4096);
    assertEquals(info.blobSizes, [4096]);
    assertEquals(info.meta, {});
    assertEquals(info.sealedAt, info.createdAt);
    assertEquals((await daemon.peer.list()).map((object) => object.id), [id]);
    assert(await client.has(id));
    const stats = await daemon.peer.stats();
    assertEquals([stats.objects, stats.bytes, stats.leases], [1, 4096, 0]);
    // Read in process: copies, and a memfd sealed for good.
    const { lease, blobs } = await daemon.peer.acquire(id, Access.READ);
    assertEquals(await blobs[0]!.read(0, 4096), bytes);
    assertEquals(await blobs[0]!.read(4000, 96), bytes.subarray(4000));
    const view = blobs[0]!.openView()!;
    assertEquals(view, bytes);
    blobs[0]!.closeView(view);
    const fd = blobs[0]!.fd!;
    assertEquals(native!.symbols.pk_get_seals(fd) & FULL_SEALS, FULL_SEALS);
    await daemon.peer.release(lease.id);
    // Read over the socket: the get is answered in C too.
    for (let i = 0; i < 2; i++) {
      using handle = await client.get(id);
      assertEquals(handle.bytes, bytes);
    }
    assertEquals(daemon.server.metrics().uds_native_open_total, 2);
    const metrics = daemon.server.metrics();
    assertEquals(metrics['uds_requests_total{op="put"}'], 1);
    assertEquals(metrics.uds_written_object_bytes_total, 4096);
    // The delete is answered in C too, and the peer drops the object at once.
    await client.delete(id);
    assertEquals(daemon.server.metrics().uds_native_delete_total, 1);
    assertEquals(await daemon.peer.list(), []);
    assertEquals((await daemon.peer.stats()).bytes, 0);
    await assertRejects(() => client.get(id), NotFoundError);
    await assertRejects(() => client.stat(id), NotFoundError);
    await assertRejects(() => client.delete(id), NotFoundError);
  },
});

Deno.test({
  name: "a delete answered in C leaves readers their bytes, and only objects stored in C go there",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve();
    await using client = await udsClient(daemon.path);
    await using reader = await udsClient(daemon.path);
    const bytes = pattern(4096, 13);
    const id = await client.put(bytes);
    using held = await reader.get(id); // a lease granted in C
    const { lease, blobs } = await daemon.peer.acquire(id, Access.READ); // and one of the peer's
    await client.delete(id);
    assertEquals(daemon.server.metrics().uds_native_delete_total, 1);
    assertEquals(await client.has(id), false);
    await assertRejects(() => client.get(id), NotFoundError);
    assertEquals(held.bytes, bytes);
    assertEquals(await blobs[0]!.read(0, 4096), bytes);
    assertEquals((await daemon.peer.stats()).bytes, 4096);
    await daemon.peer.release(lease.id);
    held.close();
    await reader.has(id); // the release, one way, has been read by now
    assertEquals((await daemon.peer.stats()).bytes, 0);
    // An object the server's JS stored is deleted by the server's JS.
    await client.put(bytes, { id: "named" });
    await client.delete("named");
    assertEquals(daemon.server.metrics().uds_native_delete_total, 1);
    assertEquals(await client.has("named"), false);
  },
});

Deno.test({
  name: "an object stored in C is read over HTTP and deleted there",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve();
    await using client = await udsClient(daemon.path);
    await using http = serveHttp(daemon.peer, { port: 0, hostname: "127.0.0.1" });
    const bytes = pattern(10_000, 2);
    const id = await client.put(bytes);
    assertEquals(daemon.puts(), 1);
    const response = await fetch(`${http.url}/v1/objects/${id}`);
    assertEquals(response.status, 200);
    assertEquals(new Uint8Array(await response.arrayBuffer()), bytes);
    const ranged = await fetch(`${http.url}/v1/objects/${id}`, {
      headers: { range: "bytes=100-199" },
    });
    assertEquals(ranged.status, 206);
    assertEquals(new Uint8Array(await ranged.arrayBuffer()), bytes.subarray(100, 200));
    const removed = await fetch(`${http.url}/v1/objects/${id}`, { method: "DELETE" });
    await removed.body?.cancel();
    assert(removed.ok, `DELETE: ${removed.status}`);
    assertEquals(await client.has(id), false);
  },
});

Deno.test({
  name: "puts in C stay within capacity, and room lent to C comes back for other puts",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve(new MemoryPeer({ capacity: 64 * 1024 }));
    await using client = await udsClient(daemon.path);
    for (let i = 0; i < 8; i++) await client.put(pattern(4096, i));
    assertEquals(daemon.puts(), 8);
    // A put with an id is the server's JS: the room C was lent comes back for it.
    await client.put(pattern(32 * 1024, 9), { id: "named" });
    assertEquals((await daemon.peer.stats()).bytes, 64 * 1024);
    // Full: refused with a typed error, and no part of the object is kept.
    await assertRejects(() => client.put(pattern(4096, 10)), CapacityExceededError);
    const stats = await daemon.peer.stats();
    assertEquals([stats.objects, stats.bytes], [9, 64 * 1024]);
    // Room freed is lent again: plain puts are answered in C once more.
    await client.delete("named");
    for (let i = 0; i < 3; i++) await client.put(pattern(4096, 11 + i));
    assert(daemon.puts() > 8, `${daemon.puts()} puts answered in C`);
  },
});

Deno.test({
  name: "in cache mode, objects stored in C are evicted least recently read first",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve(new MemoryPeer({ capacity: 32 * 1024, mode: "cache" }));
    await using client = await udsClient(daemon.path);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(await client.put(pattern(4096, i)));
    // Read the first: it is the most recently read from now on.
    (await client.get(ids[0]!)).close();
    const more: string[] = [];
    for (let i = 0; i < 4; i++) more.push(await client.put(pattern(4096, 20 + i)));
    const stats = await daemon.peer.stats();
    assert(stats.bytes <= 32 * 1024, `${stats.bytes} bytes held`);
    assertEquals(stats.evictions, 4);
    const held = new Set((await daemon.peer.list()).map((object) => object.id));
    assert(held.has(ids[0]!), "the object read was evicted");
    for (const id of more) assert(held.has(id), `${id} is missing`);
    for (const id of ids.slice(1, 5)) {
      assert(!held.has(id), `${id} was not evicted`);
      await assertRejects(() => client.get(id), NotFoundError);
    }
    using handle = await client.get(ids[7]!);
    assertEquals(handle.bytes, pattern(4096, 7));
  },
});

Deno.test({
  name: "objects stored in C outlive the server that stored them, until the peer lets go",
  ignore: native === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "packice-native-put-" });
    await using peer = new MemoryPeer();
    const server = await UdsServer.listen(peer, `${dir}/s.sock`);
    const client = await udsClient(`${dir}/s.sock`);
    const ids = [await client.put(pattern(4096, 3)), await client.put(pattern(100, 4))];
    assertEquals(server.metrics().uds_native_put_total, 2);
    await client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
    const { lease, blobs } = await peer.acquire(ids[0]!, Access.READ);
    assertEquals(await blobs[0]!.read(0, 4096), pattern(4096, 3));
    await peer.release(lease.id);
    const { blobs: small, lease: other } = await peer.acquire(ids[1]!, Access.READ);
    assertEquals(await small[0]!.read(0, 100), pattern(100, 4));
    await peer.deleteObject(ids[1]!);
    // Deleted while read: the bytes stay until the reader lets go.
    assertEquals(await small[0]!.read(0, 100), pattern(100, 4));
    await peer.release(other.id);
    assertEquals((await peer.stats()).bytes, 4096);
  },
});

Deno.test({
  name: "bad PUT frames get typed errors beside puts answered in C, and the server lives",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve();
    using raw = new RawConnection(daemon.path);
    const good = encodePutFrame(1, {}, [pattern(512, 5)], 512);
    const short = new Uint8Array(HEADER_SIZE + 3);
    short.set(encodePutFrame(2, {}, [], 0).subarray(0, HEADER_SIZE));
    new DataView(short.buffer).setUint32(8, 3, true);
    const lying = encodePutFrame(3, {}, [pattern(16, 6)], 16);
    new DataView(lying.buffer).setUint32(HEADER_SIZE, 1000, true);
    const badJson = encodePutFrame(4, {}, [pattern(16, 7)], 16);
    badJson.set(new TextEncoder().encode("{x"), HEADER_SIZE + 4);
    const empty = encodePutFrame(5, {}, [], 0);
    const message = new Uint8Array(
      good.length + short.length + lying.length + badJson.length + empty.length,
    );
    let at = 0;
    for (const frame of [good, short, lying, badJson, empty]) {
      message.set(frame, at);
      at += frame.length;
    }
    assert(raw.sendRaw(message) > 0);
    const replies = new Map<number, { flags: number; body: Uint8Array }>();
    while (replies.size < 5) {
      const reply = await raw.receive();
      assert(reply !== undefined, "no reply");
      for (const { header, body } of reply.frames) replies.set(header.id, { ...header, body });
    }
    const text = (id: number) => JSON.parse(new TextDecoder().decode(replies.get(id)!.body));
    assertEquals(replies.get(1)!.flags, Flag.REPLY);
    assertEquals(text(1).size, 512);
    for (const id of [2, 3, 4]) {
      assertEquals(replies.get(id)!.flags, Flag.REPLY | Flag.ERROR);
      assertEquals(text(id).code, new ProtocolError("").code);
    }
    // An empty object is the server's JS, as before.
    assertEquals(replies.get(5)!.flags, Flag.REPLY);
    assertEquals(text(5).size, 0);
    assertEquals(daemon.puts(), 1);
    // Over the largest message: cut, refused, and the connection serves on.
    const huge = new Uint8Array(HEADER_SIZE + 200 * 1024);
    huge.set(encodePutFrame(6, {}, [], 0));
    new DataView(huge.buffer).setUint32(8, 200 * 1024, true);
    assert(raw.sendRaw(huge) > 0);
    const cut = await raw.receive();
    assertEquals(cut?.frames[0]?.header.flags, Flag.REPLY | Flag.ERROR);
    assert(raw.send(Op.HAS, 7, text(1).id) > 0);
    const has = await raw.receive();
    assertEquals(has?.frames[0]?.body, new Uint8Array([1]));
  },
});

Deno.test({
  name: "a peer that does not take objects stored beside it gets every put through JS",
  ignore: native === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "packice-native-put-fs-" });
    try {
      await using daemon = await serve(await FileSystemPeer.open({ dir: `${dir}/data` }));
      await using client = await udsClient(daemon.path);
      const id = await client.put(pattern(4096, 8));
      assertEquals(daemon.puts(), 0);
      using handle = await client.get(id);
      assertEquals(handle.bytes, pattern(4096, 8));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
