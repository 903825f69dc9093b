/**
 * The Unix-socket transport with server and client in this process: the
 * protocol, errors, pipelining, lease ownership and clean-up. Tests across
 * processes are in uds_process_test.ts.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";
import {
  Access,
  AlreadyExistsError,
  CapacityExceededError,
  type Client,
  ClosedError,
  connect,
  FileSystemPeer,
  InvalidArgumentError,
  MemoryPeer,
  NotFoundError,
  NotSealedError,
  type Peer,
  StoreUnavailableError,
  UdsPeer,
  UdsServer,
  UnknownLeaseError,
  WrongAccessError,
} from "../../../mod.ts";
import { Linux } from "../../../native/ffi.ts";
import { Flag, Op } from "../../../transport/uds/protocol.ts";
import { RawConnection } from "../../helpers/uds_raw.ts";

const MiB = 1024 * 1024;
const text = (value: string) => new TextEncoder().encode(value);

interface Setup {
  readonly peer: Peer;
  readonly server: UdsServer;
  readonly path: string;
  /** A client over a new connection, closed after the test. */
  client(): Promise<Client>;
}

function serving(
  name: string,
  fn: (setup: Setup) => Promise<void>,
  makePeer?: (dir: string) => Promise<Peer>,
) {
  Deno.test(name, async () => {
    const dir = await Deno.makeTempDir({ prefix: "packice-uds-" });
    const peer = makePeer ? await makePeer(dir) : new MemoryPeer({ capacity: 64 * MiB });
    const path = `${dir}/test.sock`;
    const server = await UdsServer.listen(peer, path);
    const clients: Client[] = [];
    try {
      await fn({
        peer,
        server,
        path,
        client: async () => {
          const client = await connect(path);
          clients.push(client);
          return client;
        },
      });
    } finally {
      await Promise.all(clients.map((client) => client.close()));
      await server.close();
      await peer.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

serving(
  "connect() by path and unix:// URL gives a client over the socket",
  async ({ path, server }) => {
    await using a = await connect(path);
    await using b = await connect(`unix://${path}`);
    assertEquals([a.peer, b.peer].map((peer) => (peer as unknown as { path: string }).path), [
      path,
      path,
    ]);
    const id = await a.put("shared", { meta: { kind: "text" } });
    using handle = await b.get(id);
    assertEquals(handle.bytes, text("shared"));
    assertEquals(handle.meta, { kind: "text" });
    assertEquals(server.connections, 2);
  },
);

serving("a writer's bytes reach the daemon's memory without a copy", async ({ peer, client }) => {
  const c = await client();
  await using writer = await c.create(5, { id: "direct" });
  writer.buffer!.set(text("hello"));
  // The daemon sees the bytes before seal: they were written into its memfd.
  const seen = await peer.acquire("direct", Access.WRITE);
  assertEquals(await seen.blobs[0]!.read(0, 5), text("hello"));
  await peer.release(seen.lease.id);
  await writer.seal();
  assertEquals(writer.buffer!.length, 0, "the writable view is detached at seal");
  using handle = await c.get("direct");
  assertEquals(handle.bytes, text("hello"));
});

serving("errors keep their class across the socket", async ({ client }) => {
  const c = await client();
  const peer = c.peer;
  await assertRejects(() => c.get("missing"), NotFoundError);
  await c.put("x", { id: "taken" });
  await assertRejects(() => c.put("y", { id: "taken" }), AlreadyExistsError);
  await using writer = await c.create(1, { id: "open" });
  await assertRejects(() => c.get("open"), NotSealedError);
  const read = await peer.acquire("taken", Access.READ);
  await assertRejects(() => peer.seal(read.lease.id), WrongAccessError);
  await assertRejects(() => read.blobs[0]!.write(0, text("z")), WrongAccessError);
  await peer.release(read.lease.id);
  await assertRejects(() => c.get("a/b"), InvalidArgumentError);
  await assertRejects(() => c.create(1 << 30), CapacityExceededError);
  await assertRejects(() => peer.release("no-such-lease"), UnknownLeaseError);
  await assertRejects(() => peer.seal("no-such-lease"), UnknownLeaseError);
  await writer.abort();
});

serving("requests pipeline on one connection", async ({ client }) => {
  const c = await client();
  const ids = await Promise.all(
    Array.from({ length: 200 }, (_, i) => c.put(text(`object ${i}`), { id: `p${i}` })),
  );
  const handles = await Promise.all(ids.map((id) => c.get(id)));
  for (const [i, handle] of handles.entries()) assertEquals(handle.bytes, text(`object ${i}`));
  await Promise.all(handles.map((handle) => handle.close()));
  assertEquals((await c.peer.stats()).leases, 0);
});

serving("list() replies longer than a frame arrive whole", async ({ client }) => {
  const c = await client();
  const meta = { note: "m".repeat(200) };
  await Promise.all(Array.from({ length: 700 }, (_, i) => c.put("", { id: `l${i}`, meta })));
  const list = await c.list();
  assertEquals(list.length, 700);
  assertEquals(list.every((info) => info.meta.note === meta.note), true);
});

serving("stat, has, renew and stats answer over the socket", async ({ client }) => {
  const c = await client();
  await c.put("abc", { id: "s" });
  const info = await c.stat("s");
  assertEquals([info.state, info.size, info.blobSizes], ["SEALED", 3, [3]]);
  assertEquals([await c.has("s"), await c.has("t")], [true, false]);
  const { lease } = await c.peer.acquire("s", Access.READ, { ttl: 1000 });
  const renewed = await c.peer.renew(lease.id, 5000);
  assertEquals(renewed.ttl, 5000);
  assert(renewed.expiresAt! >= Date.now() + 4000);
  const stats = await c.peer.stats();
  assertEquals([stats.objects, stats.leases, stats.bytes], [1, 1, 3]);
  await c.peer.release(lease.id);
});

serving("leases belong to the connection that acquired them", async ({ client }) => {
  const a = await client();
  const b = await client();
  await a.put("mine", { id: "m" });
  const { lease } = await a.peer.acquire("m", Access.READ);
  await assertRejects(() => b.peer.release(lease.id), UnknownLeaseError);
  await assertRejects(() => b.peer.renew(lease.id, 100), UnknownLeaseError);
  const write = await a.peer.acquire("m", Access.WRITE);
  await assertRejects(() => b.peer.discard(write.lease.id), UnknownLeaseError);
  await a.peer.release(write.lease.id);
  await a.peer.release(lease.id);
});

serving(
  "closing a connection releases its leases and discards what it left unsealed",
  async ({ peer, path }) => {
    await using owner = await connect(path);
    await owner.put("kept", { id: "k" });
    // Asked over the owner's connection, after the release its put sent without waiting.
    const before = await owner.peer.stats();
    const other = await UdsPeer.connect(path);
    const read = await other.acquire("k", Access.READ);
    const view = read.blobs[0]!.openView()!;
    await other.acquire("half", Access.CREATE, { size: 1024 });
    assertEquals((await peer.stats()).leases, before.leases + 2);
    await other.close();
    await other.close();
    assertEquals(view.length, 0, "views are detached when the connection closes");
    await eventually(
      async () => (await peer.stats()).leases === before.leases,
      "the leases are gone",
    );
    assertEquals(await peer.has("half"), false);
    assertEquals((await peer.stats()).objects, before.objects);
    await assertRejects(() => other.stats(), ClosedError);
  },
);

serving("closing a handle detaches its views and ends the lease", async ({ client }) => {
  const c = await client();
  const id = await c.put("view");
  const handle = await c.get(id);
  const bytes = handle.bytes;
  assertEquals(bytes, text("view"));
  await handle.close();
  assertEquals(bytes.length, 0);
  assertEquals((await c.peer.stats()).leases, 0);
});

serving("a sealed object's memfd carries every seal", async ({ client, path }) => {
  const c = await client();
  await c.put("sealed!", { id: "seals" });
  using raw = new RawConnection(path);
  raw.send(Op.ACQUIRE, 9, JSON.stringify({ id: "seals", access: "READ" }));
  const reply = (await raw.receive())!;
  assertEquals(reply.frames[0]!.header.flags, Flag.REPLY);
  assertEquals(reply.fds.length, 1);
  const seals = raw.native.symbols.pk_get_seals(reply.fds[0]!);
  const wanted = Linux.F_SEAL_WRITE | Linux.F_SEAL_GROW | Linux.F_SEAL_SHRINK | Linux.F_SEAL_SEAL;
  assertEquals(seals & wanted, wanted);
  raw.native.symbols.pk_close(reply.fds[0]!);
});

serving("a daemon that goes away ends the client's leases", async ({ server, client }) => {
  const c = await client();
  const id = await c.put("bye");
  const handle = await c.get(id);
  const bytes = handle.bytes;
  await server.close();
  // The client tries to connect again, and finds no daemon.
  await assertRejects(() => c.stat(id), StoreUnavailableError);
  assertEquals(bytes.length, 0);
  await handle.close();
});

serving(
  "a peer without memfds is served with copies over the socket",
  async ({ client }) => {
    const c = await client();
    const big = new Uint8Array(300 * 1024).map((_, i) => i % 251);
    const id = await c.put(big, { meta: { big: true } });
    using handle = await c.get(id);
    assertEquals(handle.bytes, big);
    const { lease, blobs } = await c.peer.acquire(id, Access.READ);
    assertEquals(blobs[0]!.openView(), undefined);
    assertEquals(await blobs[0]!.read(1000, 3), big.subarray(1000, 1003));
    await c.peer.release(lease.id);
  },
  (dir) => FileSystemPeer.open({ dir: `${dir}/data`, capacity: 64 * MiB }),
);

serving(
  "requests built in place and requests pushed whole leave in one turn, in order",
  async ({ client }) => {
    const c = await client();
    const id = await c.put(text("abcdef"), { id: "mixed" });
    const { lease, blobs } = await c.peer.acquire(id, Access.READ);
    const blob = blobs[0]!;
    // HAS and STAT are built in the channel's memory, READ's bodies are arrays pushed whole.
    const replies = await Promise.all([
      c.has(id),
      blob.read(0, 3),
      c.stat(id),
      blob.read(3, 3),
      c.has("nope"),
      blob.read(1, 2),
    ]);
    assertEquals(replies[0], true);
    assertEquals(replies[1], text("abc"));
    assertEquals((replies[2] as { id: string }).id, id);
    assertEquals(replies[3], text("def"));
    assertEquals(replies[4], false);
    assertEquals(replies[5], text("bc"));
    await c.peer.release(lease.id);
  },
  (dir) => FileSystemPeer.open({ dir: `${dir}/data`, capacity: 64 * MiB }),
);

serving(
  "put() sends small objects inline and large ones through their memfd",
  async ({ client }) => {
    const c = await client();
    const small = new Uint8Array(1000).fill(1);
    const large = new Uint8Array(300 * 1024).map((_, i) => i % 7);
    const a = await c.put(small, { id: "small", meta: { k: 1 } });
    const b = await c.put(large, { id: "large" });
    using handleA = await c.get(a);
    using handleB = await c.get(b);
    assertEquals([handleA.bytes, handleA.meta], [small, { k: 1 }]);
    assertEquals(handleB.bytes, large);
    await assertRejects(() => c.put(small, { id: "small" }), AlreadyExistsError);
    await assertRejects(() => c.put(small, { id: "bad/id" }), InvalidArgumentError);
    // deno-lint-ignore no-explicit-any
    await assertRejects(() => c.put(small, { meta: [] as any }), InvalidArgumentError);
    assertEquals((await c.peer.stats()).leases, 2);
  },
);

serving("a CREATE lease reads its object back, before and after seal", async ({ client }) => {
  const c = await client();
  const { lease, blobs } = await c.peer.acquire("rw", Access.CREATE, { size: 4 });
  await blobs[0]!.write(0, text("abcd"));
  assertEquals(await blobs[0]!.read(1, 2), text("bc"));
  const writable = blobs[0]!.openView()!;
  writable[0] = "A".charCodeAt(0);
  await c.peer.seal(lease.id);
  assertEquals(writable.length, 0, "the writable view is detached at seal");
  assertEquals(blobs[0]!.openView(), text("Abcd"));
  await c.peer.release(lease.id);
  await assertRejects(() => blobs[0]!.read(0, 1), UnknownLeaseError);
});

serving("objects of several blobs pass one memfd per blob", async ({ client }) => {
  const c = await client();
  const { lease, blobs } = await c.peer.acquire("multi", Access.CREATE, { size: [2, 0, 3] });
  await blobs[0]!.write(0, text("ab"));
  await blobs[2]!.write(0, text("cde"));
  const info = await c.peer.seal(lease.id);
  assertEquals([info.size, info.blobSizes], [5, [2, 0, 3]]);
  await c.peer.release(lease.id);
  using handle = await c.get("multi");
  assertEquals(handle.blobs, [text("ab"), text(""), text("cde")]);
});

serving(
  "a client that pipelines thousands of requests is slowed, not dropped",
  async ({ client }) => {
    const c = await client();
    const id = await c.put("x".repeat(100));
    const handles = await Promise.all(Array.from({ length: 3000 }, () => c.get(id)));
    assertEquals(handles.every((handle) => handle.size === 100), true);
    await Promise.all(handles.map((handle) => handle.close()));
    assertEquals((await c.peer.stats()).leases, 0);
  },
);

serving(
  "READ leases of one blob share a read-only mapping, unmapped on close",
  async ({ path }) => {
    const size = 3 * 4096 + 5;
    const mappings = () =>
      Deno.readTextFileSync("/proc/self/maps").split("\n")
        .filter((line) => line.includes("/memfd:"))
        .filter((line) => {
          const [range, perms] = line.split(/\s+/);
          const [start, end] = range!.split("-").map((hex) => BigInt(`0x${hex}`));
          return perms === "r--s" && end! - start! === 4n * 4096n;
        }).length;
    const client = await connect(path);
    const id = await client.put(new Uint8Array(size).fill(6));
    const first = await client.get(id);
    const second = await client.get(id);
    assertEquals(mappings(), 1);
    const view = first.bytes;
    await first.close();
    assertEquals(view.length, 0, "a closed handle's view is detached");
    assertEquals(second.bytes[size - 1], 6, "while another lease's view stays valid");
    await second.close();
    using third = await client.get(id);
    assertEquals([third.bytes.length, mappings()], [size, 1]);
    await client.close();
    assertEquals(mappings(), 0);
  },
);
