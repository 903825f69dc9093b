/**
 * Objects stored in C for small puts are taken in by the peer only when
 * something of the peer's needs them (transport/uds/pending_puts.ts,
 * `PutsBeside.deferAdoption`): a put costs no JS object until then, and
 * nothing of the peer ever goes without them.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import {
  Access,
  Client,
  MemoryPeer,
  type MemoryPeerOptions,
  NotFoundError,
  UdsPeer,
  UdsServer,
} from "../../../mod.ts";
import type { BesideBytes, BesideReads } from "../../../core/peer.ts";
import type { ObjectInfo } from "../../../core/object.ts";
import { openNative } from "../../helpers/native.ts";
import { pattern } from "../../helpers/pattern.ts";
import { servePeer } from "../../helpers/served_peer.ts";

const native = openNative();

/** A memory peer that counts the objects stored beside it that it has taken in. */
class CountingPeer extends MemoryPeer {
  adopted = 0;

  constructor(options?: MemoryPeerOptions) {
    super(options);
  }

  override adoptBeside(
    info: ObjectInfo,
    bytes: BesideBytes,
    order?: number,
  ): BesideReads | undefined {
    this.adopted++;
    return super.adoptBeside(info, bytes, order);
  }
}

function serve(peer = new CountingPeer()) {
  return servePeer(peer);
}

Deno.test({
  name: "objects stored in C are taken in by the peer only when something needs them",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve();
    await using client = new Client(await UdsPeer.connect(daemon.path));
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await client.put(pattern(4096, i)));
    assertEquals(daemon.puts(), 20);
    assertEquals(daemon.peer.adopted, 0);
    // Counted, and not taken in for that.
    const stats = await daemon.peer.stats();
    assertEquals([stats.objects, stats.bytes], [20, 20 * 4096]);
    assertEquals(daemon.peer.adopted, 0);
    for (let i = 0; i < 5; i++) ids.push(await client.put(pattern(4096, 20 + i)));
    assertEquals(daemon.peer.adopted, 0);
    // Listed from their records, in put order.
    assertEquals((await daemon.peer.list()).map((info) => info.id), ids);
    const listed = await daemon.peer.stats();
    assertEquals([listed.objects, listed.bytes], [25, 25 * 4096]);
    assertEquals(daemon.peer.adopted, 0);
    // A stat, a has and a delete are answered from the records too.
    const last = await client.put(pattern(100, 99));
    const info = await daemon.peer.stat(last);
    assertEquals([info.id, info.size, info.state, info.blobSizes], [last, 100, "SEALED", [100]]);
    const next = await client.put(pattern(100, 98));
    assert(await daemon.peer.has(next));
    const gone = await client.put(pattern(200, 96));
    const removed: string[] = [];
    daemon.peer.onRemove((id) => removed.push(id));
    await daemon.peer.deleteObject(gone);
    assertEquals(removed, [gone]);
    await assertRejects(() => client.get(gone), NotFoundError);
    await assertRejects(() => daemon.peer.stat(gone), NotFoundError);
    assertEquals(daemon.peer.adopted, 0);
    assertEquals((await daemon.peer.stats()).objects, 27);
    // A lease of the peer's own takes in that one alone.
    const read = await client.put(pattern(300, 97));
    const { lease, blobs } = await daemon.peer.acquire(read, Access.READ);
    assertEquals(await blobs[0]!.read(0, 300), pattern(300, 97));
    await daemon.peer.release(lease.id);
    assertEquals(daemon.peer.adopted, 1);
    await assertRejects(() => daemon.peer.stat("0".repeat(36)), NotFoundError);
    await assertRejects(() => daemon.peer.stat("none"), NotFoundError);
    assertEquals(daemon.peer.adopted, 1);
    assertEquals((await daemon.peer.stats()).objects, 28);
    // A read in C takes in the object read alone.
    const trio = [];
    for (let i = 0; i < 3; i++) trio.push(await client.put(pattern(64, 50 + i)));
    using handle = await client.get(trio[2]!);
    assertEquals(handle.bytes, pattern(64, 52));
    assertEquals(daemon.peer.adopted, 2);
    assertEquals((await daemon.peer.stats()).objects, 31);
    assertEquals(
      (await daemon.peer.list()).map((info) => info.id),
      [...ids, last, next, read, ...trio],
    );
    assertEquals(daemon.peer.adopted, 2);
  },
});

Deno.test({
  name: "an object deleted in C before the peer took it in gives its room back and is heard of",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve(new CountingPeer({ capacity: 64 * 1024 }));
    await using client = new Client(await UdsPeer.connect(daemon.path));
    const removed: string[] = [];
    daemon.peer.onRemove((id) => removed.push(id));
    const ids: string[] = [];
    for (let i = 0; i < 16; i++) ids.push(await client.put(pattern(4096, i)));
    assertEquals(daemon.puts(), 16);
    for (const id of ids) await client.delete(id);
    assertEquals(daemon.server.metrics().uds_native_delete_total, 16);
    assertEquals(removed, ids);
    assertEquals(daemon.peer.adopted, 0);
    const empty = await daemon.peer.stats();
    assertEquals([empty.objects, empty.bytes], [0, 0]);
    await assertRejects(() => client.get(ids[0]!), NotFoundError);
    // All of the room is the peer's again.
    await client.put(pattern(64 * 1024, 1), { id: "whole" });
    const stats = await daemon.peer.stats();
    assertEquals([stats.objects, stats.bytes], [1, 64 * 1024]);
    assertEquals(daemon.peer.adopted, 0);
  },
});

Deno.test({
  name: "a read in C of an object not taken in yet counts, in the order reads happened",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve(new CountingPeer({ capacity: 32 * 1024, mode: "cache" }));
    await using client = new Client(await UdsPeer.connect(daemon.path));
    const first = await client.put(pattern(4096, 1));
    const second = await client.put(pattern(4096, 2));
    assertEquals(daemon.peer.adopted, 0);
    // Read the first in C: it alone is taken in, then the read counts.
    (await client.get(first)).close();
    assertEquals(daemon.peer.adopted, 1);
    for (let i = 0; i < 7; i++) await client.put(pattern(4096, 10 + i));
    const stats = await daemon.peer.stats();
    assertEquals(stats.hits, 1);
    assert((stats.evictions ?? 0) >= 1, `${stats.evictions} evictions`);
    const held = new Set((await daemon.peer.list()).map((info) => info.id));
    assert(held.has(first), "the object read was evicted");
    assert(!held.has(second), "the object least recently used was kept");
  },
});

Deno.test({
  name: "objects not taken in yet are the peer's once the server has gone",
  ignore: native === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "packice-lazy-put-" });
    await using peer = new CountingPeer();
    const server = await UdsServer.listen(peer, `${dir}/s.sock`);
    const client = new Client(await UdsPeer.connect(`${dir}/s.sock`));
    const ids = [await client.put(pattern(4096, 3)), await client.put(pattern(100, 4))];
    assertEquals(peer.adopted, 0);
    await client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
    // Still waiting, and still the peer's.
    assertEquals(peer.adopted, 0);
    assertEquals((await peer.list()).map((info) => info.id), ids);
    const { lease, blobs } = await peer.acquire(ids[1]!, Access.READ);
    assertEquals(await blobs[0]!.read(0, 100), pattern(100, 4));
    await peer.release(lease.id);
    assertEquals(peer.adopted, 1);
    assertEquals((await peer.stats()).bytes, 4196);
    assertEquals((await peer.stat(ids[0]!)).size, 4096);
    await peer.deleteObject(ids[0]!);
    assertEquals((await peer.list()).map((info) => info.id), [ids[1]]);
  },
});
