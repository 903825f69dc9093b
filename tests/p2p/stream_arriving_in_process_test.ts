import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { type Entries, memoryDirectory } from "../helpers/memory_directory.ts";
import { ClusterPeer, connect, MemoryPeer, NotFoundError, serveHttp } from "../../mod.ts";

const TOKEN = "in-process";
const MiB = 1 << 20;

/** A holder `a` serving at `rate` bytes a second and a reader `b`, in this process. */
function pair(rate: number) {
  const entries: Entries = new Map();
  const peer = (node: string) =>
    new ClusterPeer({
      home: new MemoryPeer({ capacity: 64 * MiB }),
      replicas: new MemoryPeer({ capacity: 64 * MiB }),
      directory: memoryDirectory(entries),
      node,
      token: TOKEN,
      address: "http://127.0.0.1:9",
    });
  const a = peer("a");
  const server = serveHttp(a, { port: 0, token: TOKEN, maxUploadRate: rate });
  a.address = server.url;
  const b = peer("b");
  return {
    a,
    b,
    server,
    [Symbol.asyncDispose]: async () => {
      await server.close();
      await a.close();
      await b.close();
    },
  };
}

Deno.test("an in-process client streams an arriving object in order; bytes waits for the seal", async () => {
  await using cluster = pair(16e6);
  await using onA = await connect(cluster.a);
  await using onB = await connect(cluster.b);
  const bytes = pattern(24 * MiB, 31);
  await onA.put(bytes, { id: "w", meta: { kind: "w" } });
  await using arriving = await onB.open("w");
  assertEquals(arriving.info.state, "CREATING");
  assertEquals(arriving.meta, { kind: "w" });
  const reader = arriving.stream().getReader();
  const first = await reader.read();
  // The first piece is in, the object is not: it is not sealed here yet.
  assert(!first.done && sameBytes(first.value, bytes.subarray(0, first.value.length)));
  assertEquals(await onB.has("w"), false);
  let at = first.value.length;
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    assert(sameBytes(next.value, bytes.subarray(at, at + next.value.length)), `bytes at ${at}`);
    at += next.value.length;
  }
  assertEquals(at, bytes.length);
  assert(sameBytes(await arriving.bytes(), bytes));
  assertEquals(cluster.b.counts.cluster_fetches_total, 1);
  // Held now: opened as a get does, with the same bytes.
  await using again = await onB.open("w");
  assertEquals(again.info.state, "SEALED");
  assert(sameBytes(await again.bytes(), bytes));
});

Deno.test("an in-process stream fails with NotFoundError when its only holder stops mid-transfer", async () => {
  await using cluster = pair(8e6);
  await using onA = await connect(cluster.a);
  await using onB = await connect(cluster.b);
  await onA.put(pattern(24 * MiB, 32), { id: "w" });
  await using arriving = await onB.open("w");
  const reader = arriving.stream().getReader();
  assert(!(await reader.read()).done);
  await cluster.server.close();
  await assertRejects(async () => {
    while (!(await reader.read()).done) { /* what verified before */ }
  }, NotFoundError);
  await assertRejects(() => arriving.bytes(), NotFoundError);
  assertEquals(await onB.has("w"), false);
  // No holder at all: the open itself fails, typed.
  await assertRejects(() => onB.open("nowhere"), NotFoundError);
});

Deno.test("a reader that cancels its stream early holds nothing; the fetch goes on", async () => {
  await using cluster = pair(16e6);
  await using onA = await connect(cluster.a);
  await using onB = await connect(cluster.b);
  const bytes = pattern(16 * MiB, 33);
  await onA.put(bytes, { id: "w" });
  const arriving = await onB.open("w");
  const reader = arriving.stream().getReader();
  assert(!(await reader.read()).done);
  await reader.cancel();
  await arriving.close();
  using handle = await onB.get("w");
  assert(sameBytes(handle.bytes, bytes));
  await handle.close();
  assertEquals((await cluster.b.stats()).leases, 0);
  // Cancelled once the copy is sealed: the lease on the copy ends too.
  const late = await onB.open("w");
  const lateReader = late.stream().getReader();
  assert(!(await lateReader.read()).done);
  await lateReader.cancel();
  assertEquals((await cluster.b.stats()).leases, 0);
});
