/** A cluster peer lists in pages: its own objects in put order, then the copies it fetched. */
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { pattern } from "../helpers/cluster.ts";
import { type Entries, memoryDirectory } from "../helpers/memory_directory.ts";
import { ClusterPeer, connect, InvalidArgumentError, MemoryPeer, serveHttp } from "../../mod.ts";

const TOKEN = "in-process";

Deno.test("a cluster peer pages its own objects, then its fetched copies", async () => {
  const entries: Entries = new Map();
  const peer = (node: string) =>
    new ClusterPeer({
      home: new MemoryPeer({ capacity: 16 << 20 }),
      replicas: new MemoryPeer({ capacity: 16 << 20 }),
      directory: memoryDirectory(entries),
      node,
      address: "http://127.0.0.1:9",
      token: TOKEN,
    });
  await using a = peer("a");
  await using server = serveHttp(a, { port: 0, token: TOKEN });
  a.address = server.url;
  await using b = peer("b");
  await using onA = await connect(a);
  await using onB = await connect(b);
  for (const id of ["w1", "w2"]) await onA.put(pattern(100, 1), { id });
  for (const id of ["b1", "b2", "b3"]) await onB.put(pattern(100, 2), { id });
  for (const id of ["w2", "w1"]) (await onB.get(id)).close();
  const walked: string[] = [];
  for await (const info of onB.objects({ pageSize: 2 })) walked.push(info.id);
  assertEquals(walked, ["b1", "b2", "b3", "w2", "w1"]);
  assertEquals((await b.listPage({ limit: 3 })).next, "1.0:");
  await assertRejects(() => b.listPage({ after: "2.0:x" }), InvalidArgumentError);
  // A peer of one stage refuses a later stage's cursor.
  await using single = new MemoryPeer();
  await assertRejects(() => single.listPage({ after: "1.0:x" }), InvalidArgumentError);
});
