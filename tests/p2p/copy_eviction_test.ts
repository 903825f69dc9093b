import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { type Entries, memoryDirectory } from "../helpers/memory_directory.ts";
import { ClusterPeer, connect, MemoryPeer, serveHttp } from "../../mod.ts";
import { wrapCluster } from "../../daemon/cluster_peer.ts";

const TOKEN = "in-process";
const MiB = 1 << 20;

/** Holders in the directory of each id, sorted. */
function holders(entries: Entries, id: string): string[] {
  return [...entries.get(id)?.holders.keys() ?? []].sort();
}

Deno.test("a fetched copy evicted for room leaves the copies and withdraws this node only", async () => {
  const entries: Entries = new Map();
  const a = new ClusterPeer({
    home: new MemoryPeer({ capacity: 64 * MiB }),
    replicas: new MemoryPeer({ capacity: 64 * MiB }),
    directory: memoryDirectory(entries),
    node: "a",
    token: TOKEN,
  });
  await using server = serveHttp(a, { port: 0, token: TOKEN });
  a.address = server.url;
  // Room for two copies of 3 MiB, as a daemon wires it: the copies are a cache.
  const b = wrapCluster(new MemoryPeer({ capacity: 64 * MiB }), {
    directory: memoryDirectory(entries),
    node: "b",
    address: "http://127.0.0.1:9",
    capacity: 7 * MiB,
    token: TOKEN,
  });
  try {
    await using onA = await connect(a);
    await using onB = await connect(b);
    const objects = ["x", "y", "z"].map((id, i) => ({ id, bytes: pattern(3 * MiB, 40 + i) }));
    for (const { id, bytes } of objects) await onA.put(bytes, { id });
    for (const { id } of objects.slice(0, 2)) (await onB.get(id)).close();
    assertEquals(holders(entries, "x"), ["a", "b"]);
    assertEquals(holders(entries, "y"), ["a", "b"]);
    const held = await b.stats();
    assertEquals(held.objects, 2, "stats count the fetched copies");
    assertEquals(held.capacity, 64 * MiB + 7 * MiB, "stats show both pools");
    // A third copy does not fit: x, the least recently read, goes.
    using z = await onB.get("z");
    assert(sameBytes(z.bytes, objects[2]!.bytes));
    assertEquals((await b.stats()).evictions ?? 0, 0, "home evicted nothing");
    assertEquals(await b.has("x"), false);
    assertEquals(holders(entries, "x"), ["a"], "b withdrew as holder of x, a stays");
    assertEquals(holders(entries, "y"), ["a", "b"]);
    assertEquals(holders(entries, "z"), ["a", "b"]);
    // Read again: fetched again, not served from a copy that is gone.
    const fetches = b.counts.cluster_fetches_total;
    using x = await onB.get("x");
    assert(sameBytes(x.bytes, objects[0]!.bytes));
    assertEquals(b.counts.cluster_fetches_total, fetches + 1);
    assertEquals(holders(entries, "x"), ["a", "b"]);
  } finally {
    await b.close();
    await a.close();
  }
});

Deno.test("an object evicted from a member's own peer withdraws that member only", async () => {
  const entries: Entries = new Map();
  const peer = (node: string, capacity: number) =>
    new ClusterPeer({
      home: new MemoryPeer({ capacity, mode: "cache" }),
      replicas: new MemoryPeer({ capacity: 64 * MiB }),
      directory: memoryDirectory(entries),
      node,
      address: `http://${node}.invalid`,
    });
  await using a = peer("a", 7 * MiB);
  await using b = peer("b", 64 * MiB);
  await using onA = await connect(a);
  await using onB = await connect(b);
  await onA.put(pattern(3 * MiB, 50), { id: "x" });
  await onB.put(pattern(3 * MiB, 50), { id: "x" }); // the same bytes, held by both
  await onA.put(pattern(3 * MiB, 51), { id: "y" });
  assertEquals(holders(entries, "x"), ["a", "b"]);
  await onA.put(pattern(3 * MiB, 52), { id: "z" }); // x, least recently read on a, goes
  assertEquals(await onA.has("x"), false);
  assertEquals(holders(entries, "x"), ["b"]);
  assertEquals(holders(entries, "y"), ["a"]);
  assertEquals(holders(entries, "z"), ["a"]);
});
