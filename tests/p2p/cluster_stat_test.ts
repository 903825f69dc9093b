/**
 * A daemon that does not hold an object another member holds answers
 * `stat`, `HEAD` and `If-None-Match` for it as a `get` would find it, without
 * fetching it: not `NOT_FOUND`. On Redis, whose lease store knows the objects
 * put on any daemon, that is so of the read-throughs.
 */
import { connect, NotFoundError } from "../../mod.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { clusterDir, startClusterDaemons } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { type ClusterDaemon, startCluster, TOKEN } from "./cluster_daemons.ts";
import { startCountingOrigin } from "./counting_origin.ts";

const headers = { authorization: `Bearer ${TOKEN}` };

Deno.test("stat, HEAD and If-None-Match on a daemon of an embedded cluster find an object another member holds", async () => {
  await using cluster = await startCluster(["a", "b"]);
  const [a, b] = cluster.daemons as [ClusterDaemon, ClusterDaemon];
  await using atA = await connect(a.socket);
  await atA.put("held by a", { id: "elsewhere", meta: { "content-type": "text/plain" } });
  const held = await atA.stat("elsewhere");

  await using atB = await connect(b.socket);
  const info = await atB.stat("elsewhere");
  assertEquals(
    [info.state, info.size, info.meta, info.digest, info.holders?.map((h) => h.node)],
    ["SEALED", 9, { "content-type": "text/plain" }, held.digest, ["a"]],
  );
  const url = `${b.url}/v1/objects/elsewhere`;
  const head = await fetch(url, { method: "HEAD", headers });
  assertEquals(
    [head.status, head.headers.get("etag"), head.headers.get("content-length")],
    [200, `"${held.digest}"`, "9"],
  );
  const unchanged = await fetch(url, {
    headers: { ...headers, "if-none-match": `"${held.digest}"` },
  });
  await unchanged.body?.cancel();
  assertEquals(unchanged.status, 304);
  // Answered without a copy: b fetched nothing, and holds nothing.
  assertEquals(await b.metric("packice_cluster_fetches_total"), 0);
  assertEquals(await atB.get("elsewhere", { local: true }).catch((e) => e.code), "NOT_FOUND");

  await assertRejects(() => atB.stat("nowhere"), NotFoundError);
  assertEquals(
    (await fetch(`${b.url}/v1/objects/nowhere`, { method: "HEAD", headers })).status,
    404,
  );
  // And a get still fetches it.
  using copy = await atB.get("elsewhere");
  assertEquals(new TextDecoder().decode(copy.bytes), "held by a");
});

Deno.test(
  "on Redis, stat on a daemon finds a read-through another daemon holds",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using dir = await clusterDir();
    await using origin = startCountingOrigin({ body: new Uint8Array(1 << 20).fill(3) });
    await using daemons = await startClusterDaemons(redis.url, dir.path, ["a", "b"]);
    await using atA = await connect(daemons[0].socket);
    const response = await atA.fetch(origin.url);
    await response.bytes();
    await using atB = await connect(daemons[1].socket);
    const info = await atB.stat(response.headers.get("packice-object")!);
    assertEquals(
      [info.state, info.size, info.holders?.map((h) => h.node)],
      ["SEALED", 1 << 20, ["a"]],
    );
  },
);
