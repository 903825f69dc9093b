/**
 * Objects stored in C for small puts are taken in by the peer only when
 * something of the peer's needs them (transport/uds/pending_puts.ts,
 * `PutsBeside.deferAdoption`): a put costs no JS object until then, and
 * nothing of the peer ever goes without them.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { udsClient } from "../../helpers/uds_client.ts";
import {
  Access,
  AlreadyExistsError,
  CapacityExceededError,
  type Client,
  MemoryPeer,
  type MemoryPeerOptions,
  NotFoundError,
  PackiceError,
  UdsServer,
} from "../../../mod.ts";
import type { BesideBytes, BesideReads } from "../../../core/peer.ts";
import { BasePeer } from "../../../core/base_peer.ts";
import type { BlobStore } from "../../../core/blob_store.ts";
import { MemfdBlobStore, MemoryLeaseStore } from "../../../mod.ts";
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
    await using client = await udsClient(daemon.path);
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
    await using client = await udsClient(daemon.path);
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
    await using client = await udsClient(daemon.path);
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
    const client = await udsClient(`${dir}/s.sock`);
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

/** Bytes of `size` for a put with an id of its own, which the server's JS answers. */
function jsPut(client: Client, id: string, size = 4096): Promise<string> {
  return client.put(pattern(size, id.length), { id });
}

for (const mode of ["store", "cache"] as const) {
  Deno.test({
    name: `a list in ${mode} mode takes no object in and is in put order, puts in C and JS mixed`,
    ignore: native === undefined,
    async fn() {
      await using daemon = await serve(new CountingPeer({ mode }));
      await using client = await udsClient(daemon.path);
      const w1 = await client.put(pattern(4096, 1));
      const j1 = await jsPut(client, "j1");
      const w2 = await client.put(pattern(4096, 2));
      // Taken in early, by a lease of the peer's own: it keeps its place in lists.
      const { lease } = await daemon.peer.acquire(w2, Access.READ);
      await daemon.peer.release(lease.id);
      const j2 = await jsPut(client, "j2");
      const w3 = await client.put(pattern(4096, 3));
      // A put of the JS path begun before a put in C and sealed after it: listed as begun.
      const writer = await client.create(4096, { id: "j3" });
      const w4 = await client.put(pattern(4096, 4));
      await writer.seal();
      await writer.close();
      assertEquals(daemon.puts(), 4);
      assertEquals(daemon.peer.adopted, 1);
      const listed = (await daemon.peer.list()).map((info) => info.id);
      assertEquals(listed, [w1, j1, w2, j2, w3, "j3", w4]);
      assertEquals(daemon.peer.adopted, 1);
      // Over the socket too.
      assertEquals((await client.list()).map((info) => info.id), listed);
      assertEquals(daemon.peer.adopted, 1);
    },
  });
}

Deno.test({
  name:
    "a stat, has or delete of a waiting object in cache mode takes none in; a read takes in that one",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve(new CountingPeer({ mode: "cache" }));
    await using client = await udsClient(daemon.path);
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await client.put(pattern(1000, i)));
    assertEquals((await client.stat(ids[1]!)).size, 1000);
    assertEquals((await daemon.peer.stat(ids[2]!)).size, 1000);
    assert(await daemon.peer.has(ids[3]!));
    await daemon.peer.deleteObject(ids[3]!);
    assertEquals(daemon.peer.adopted, 0);
    using handle = await client.get(ids[0]!);
    assertEquals(handle.bytes, pattern(1000, 0));
    assertEquals(daemon.peer.adopted, 1);
    const { lease } = await daemon.peer.acquire(ids[1]!, Access.READ);
    await daemon.peer.release(lease.id);
    assertEquals(daemon.peer.adopted, 2);
    assertEquals((await daemon.peer.stats()).objects, 3);
  },
});

Deno.test({
  name:
    "cache mode evicts the least recently used across objects taken in and waiting, as puts were answered",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve(new CountingPeer({ capacity: 32 * 1024, mode: "cache" }));
    await using client = await udsClient(daemon.path);
    const evicted: string[] = [];
    daemon.peer.onEvict((info) => evicted.push(info.id));
    // A put of the JS path sealed after a put answered in C meanwhile: more recent.
    const writer = await client.create(4096, { id: "a" });
    const w1 = await client.put(pattern(4096, 1));
    await writer.seal();
    await writer.close();
    await jsPut(client, "j1");
    const w2 = await client.put(pattern(4096, 2));
    const w3 = await client.put(pattern(4096, 3));
    (await client.get(w3)).close();
    await jsPut(client, "j2");
    const w4 = await client.put(pattern(4096, 4));
    const w5 = await client.put(pattern(4096, 5));
    assertEquals(daemon.puts(), 5);
    assertEquals(daemon.peer.adopted, 1);
    assertEquals((await daemon.peer.stats()).bytes, 32 * 1024);
    await jsPut(client, "big", 12 * 1024);
    assertEquals(evicted, [w1, "a", "j1"]);
    assertEquals(daemon.peer.adopted, 1);
    assertEquals(
      (await daemon.peer.list()).map((info) => info.id),
      [w2, w3, "j2", w4, w5, "big"],
    );
    const stats = await daemon.peer.stats();
    assertEquals([stats.objects, stats.bytes, stats.evictions], [6, 32 * 1024, 3]);
    await assertRejects(() => client.get(w1), NotFoundError);
  },
});

Deno.test({
  name:
    "room of waiting objects: CAPACITY_EXCEEDED while they hold it, given back exactly when they go",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve(new CountingPeer({ capacity: 64 * 1024 }));
    await using client = await udsClient(daemon.path);
    const ids: string[] = [];
    for (let i = 0; i < 16; i++) ids.push(await client.put(pattern(4096, i)));
    assertEquals(daemon.puts(), 16);
    await assertRejects(() => jsPut(client, "one", 1), CapacityExceededError);
    await daemon.peer.deleteObject(ids[0]!);
    await jsPut(client, "four", 4096);
    await assertRejects(() => jsPut(client, "one", 1), CapacityExceededError);
    for (const id of ids.slice(1)) await daemon.peer.deleteObject(id);
    await jsPut(client, "rest", 60 * 1024);
    const stats = await daemon.peer.stats();
    assertEquals([stats.objects, stats.bytes], [2, 64 * 1024]);
    assertEquals(daemon.peer.adopted, 0);
    // In cache mode, a put as large as the peer drops every waiting object.
    await using cache = await serve(new CountingPeer({ capacity: 64 * 1024, mode: "cache" }));
    await using other = await udsClient(cache.path);
    for (let i = 0; i < 16; i++) await other.put(pattern(4096, i));
    assertEquals(cache.puts(), 16);
    await jsPut(other, "whole", 64 * 1024);
    const full = await cache.peer.stats();
    assertEquals([full.objects, full.bytes, full.evictions], [1, 64 * 1024, 16]);
    assertEquals(cache.peer.adopted, 0);
  },
});

/** The inodes of the files this process has open (tests in parallel share it: compare inodes). */
function openInodes(): Set<number> {
  const inodes = new Set<number>();
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      inodes.add(Deno.statSync(`/proc/self/fd/${entry.name}`).ino!);
    } catch {
      // Closed meanwhile.
    }
  }
  return inodes;
}

for (const peerFirst of [false, true]) {
  Deno.test({
    name: `closing ${
      peerFirst ? "the peer, then the server," : "the server, then the peer,"
    } with waiting objects takes none in and leaves no memfd open`,
    ignore: native === undefined,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "packice-lazy-close-" });
      const peer = new CountingPeer({ mode: "cache" });
      const server = await UdsServer.listen(peer, `${dir}/s.sock`);
      const client = await udsClient(`${dir}/s.sock`);
      const ids: string[] = [];
      // More than the peer lets go of in one turn of the event loop.
      for (let i = 0; i < 17_000; i++) ids.push(await client.put(pattern(64, i)));
      // Read in C: a memfd each, made there; the peer's descriptors share their inodes.
      const memfds = new Set<number>();
      for (const id of ids.slice(0, 5)) {
        (await client.get(id)).close();
        const { lease, blobs } = await peer.acquire(id, Access.READ);
        memfds.add(Deno.statSync(`/proc/self/fd/${blobs[0]!.fd}`).ino!);
        await peer.release(lease.id);
      }
      assertEquals([memfds.size, peer.adopted], [5, 5]);
      if (peerFirst) {
        await peer.close();
        await assertRejects(() => client.get(ids[100]!), PackiceError);
      }
      await client.close();
      await server.close();
      if (!peerFirst) {
        assertEquals((await peer.stats()).objects, 17_000);
        await peer.close();
      }
      assertEquals(peer.adopted, 5);
      await Deno.remove(dir, { recursive: true });
      assertEquals([...openInodes()].filter((inode) => memfds.has(inode)), []);
    },
  });
}

Deno.test({
  name:
    "cache mode: a put answered in C while a put of the JS path seals is the less recently used",
  ignore: native === undefined,
  async fn() {
    // A memory store whose seals wait for a gate while it is shut.
    const store = new MemfdBlobStore(native!, { capacity: 16 * 1024 });
    let shut = false;
    let open = () => {};
    let sealing = () => {};
    const entered = new Promise<void>((resolve) => sealing = resolve);
    const gate = new Promise<void>((resolve) => open = resolve);
    const blobs = new Proxy(store, {
      get(target, name) {
        if (name === "seal") {
          return async (...args: Parameters<BlobStore["seal"]>) => {
            if (shut) {
              sealing();
              await gate;
            }
            return target.seal(...args);
          };
        }
        const value = Reflect.get(target, name, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const peer = new BasePeer({ blobs, leases: new MemoryLeaseStore(), mode: "cache" });
    await using daemon = await servePeer(peer);
    await using client = await udsClient(daemon.path);
    const evicted: string[] = [];
    peer.onEvict((info) => evicted.push(info.id));
    shut = true;
    const first = jsPut(client, "a");
    await entered;
    const w1 = await client.put(pattern(4096, 1));
    shut = false;
    open();
    await first;
    const w2 = await client.put(pattern(4096, 2));
    const w3 = await client.put(pattern(4096, 3));
    assertEquals(daemon.puts(), 3);
    await jsPut(client, "b");
    assertEquals(evicted, [w1]);
    assertEquals((await peer.list()).map((info) => info.id), ["a", w2, w3, "b"]);
  },
});

Deno.test({
  name: "cache mode: an object taken in without a read keeps its put's place in recency",
  ignore: native === undefined,
  async fn() {
    await using daemon = await serve(new CountingPeer({ capacity: 16 * 1024, mode: "cache" }));
    await using client = await udsClient(daemon.path);
    const evicted: string[] = [];
    daemon.peer.onEvict((info) => evicted.push(info.id));
    const w1 = await client.put(pattern(4096, 1));
    const w2 = await client.put(pattern(4096, 2));
    // A put of its id takes it in, and is refused: no read.
    await assertRejects(() => jsPut(client, w1), AlreadyExistsError);
    assertEquals(daemon.peer.adopted, 1);
    await jsPut(client, "j1");
    await jsPut(client, "j2");
    await jsPut(client, "j3");
    assertEquals(evicted, [w1]);
    await jsPut(client, "j4");
    assertEquals(evicted, [w1, w2]);
    // Read once, it is as recent as that read.
    (await client.get("j1")).close();
    await jsPut(client, "j5");
    assertEquals(evicted, [w1, w2, "j2"]);
  },
});
