import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { type Entries, memoryDirectory } from "../helpers/memory_directory.ts";
import { ClusterPeer, connect, MemoryPeer, NotFoundError, serveHttp } from "../../mod.ts";
import type { Member, Members } from "../../p2p/members.ts";

const TOKEN = "in-process";

/** Two cluster peers in this process, a serving over HTTP, on one in-memory directory. */
function pair(members?: Members) {
  const entries: Entries = new Map();
  const a = new ClusterPeer({
    home: new MemoryPeer({ capacity: 64 << 20 }),
    replicas: new MemoryPeer({ capacity: 64 << 20 }),
    directory: memoryDirectory(entries),
    node: "a",
    token: TOKEN,
  });
  const server = serveHttp(a, { port: 0, token: TOKEN });
  a.address = server.url;
  const b = new ClusterPeer({
    home: new MemoryPeer({ capacity: 64 << 20 }),
    replicas: new MemoryPeer({ capacity: 64 << 20 }),
    directory: memoryDirectory(entries),
    node: "b",
    address: "http://127.0.0.1:9",
    token: TOKEN,
    members,
  });
  return {
    a,
    b,
    entries,
    [Symbol.asyncDispose]: async () => {
      await server.close();
      await a.close();
      await b.close();
    },
  };
}

Deno.test("ClusterPeer fetches on miss for an in-process client", async () => {
  await using cluster = pair();
  await using onA = await connect(cluster.a);
  await using onB = await connect(cluster.b);
  const bytes = pattern(5 << 20, 11);
  await onA.put(bytes, { id: "w", meta: { kind: "weights" } });
  using handle = await onB.get("w");
  assert(sameBytes(handle.bytes, bytes));
  assertEquals(handle.meta, { kind: "weights" });
  assertEquals(cluster.b.counts.cluster_fetches_total, 1);
  assertEquals([...cluster.entries.get("w")!.holders.keys()].sort(), ["a", "b"]);
});

Deno.test("ClusterPeer skips and withdraws holders that membership knows to be dead", async () => {
  const member: Member = {
    node: "a",
    address: "",
    state: "dead",
    incarnation: 1,
    changedAt: Date.now(),
  };
  const members: Members = {
    self: "b",
    list: () => [member],
    live: () => [],
    onChange: () => () => {},
  };
  await using cluster = pair(members);
  await using onA = await connect(cluster.a);
  await using onB = await connect(cluster.b);
  await onA.put(pattern(1000, 12), { id: "w" });
  await assertRejects(() => onB.get("w"), NotFoundError);
  assertEquals(cluster.entries.has("w"), false);
  assertEquals(cluster.b.counts.cluster_withdrawn_total, 1);
});
