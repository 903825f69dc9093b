/**
 * A daemon restarted on its data directory tells the cluster what it still
 * holds: the others find its objects again, and what was deleted or put
 * again with other bytes while it was away is dropped there, not served.
 */
import { assertEquals } from "../helpers/assert.ts";
import { clusterDir, startClusterDaemon, TOKEN as REDIS_TOKEN } from "../helpers/cluster.ts";
import { eventually } from "../helpers/eventually.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { type ClusterDaemon, startCluster, TOKEN } from "./cluster_daemons.ts";

const headers = { authorization: `Bearer ${TOKEN}` };

/** A daemon's HTTP base URL, and its cluster's token when not {@link TOKEN}. */
type Daemon = { readonly url: string; readonly token?: string };

const auth = (daemon: Daemon) =>
  daemon.token === undefined ? headers : { authorization: `Bearer ${daemon.token}` };

async function put(daemon: Daemon, id: string, text: string): Promise<void> {
  const response = await fetch(`${daemon.url}/v1/objects/${id}`, {
    method: "PUT",
    headers: auth(daemon),
    body: text,
  });
  assertEquals(response.status, 201, await response.text());
}

/** The body of `id` at `daemon`, or its HTTP status when not 200. */
async function get(daemon: Daemon, id: string): Promise<string | number> {
  const response = await fetch(`${daemon.url}/v1/objects/${id}`, { headers: auth(daemon) });
  const body = await response.text();
  return response.status === 200 ? body : response.status;
}

Deno.test("a daemon restarted with --data-dir announces what it holds, and drops what changed meanwhile", async () => {
  await using cluster = await startCluster(["a", "b"]);
  const [a, b] = cluster.daemons as [ClusterDaemon, ClusterDaemon];
  const data = await Deno.makeTempDir({ prefix: "packice-restart-" });
  try {
    const flags = ["--impl", "fs", "--data-dir", data];
    const c = await cluster.add("c", flags);
    await put(c, "kept", "kept on disk");
    await put(c, "deleted", "deleted while away");
    await put(c, "replaced", "the old bytes");
    // Sealed and announced (every put announces before it answers): b finds them.
    assertEquals(await get(b, "deleted"), "deleted while away");
    assertEquals(await get(b, "replaced"), "the old bytes");
    await c.signal("SIGTERM");

    // While c is away, which withdrew from the directory as it left; b's copies are deleted.
    assertEquals(await get(a, "kept"), 404);
    assertEquals(
      (await fetch(`${b.url}/v1/objects/deleted`, { method: "DELETE", headers }))
        .status,
      204,
    );
    assertEquals(
      (await fetch(`${b.url}/v1/objects/replaced`, { method: "DELETE", headers }))
        .status,
      204,
    );
    await put(b, "replaced", "the new bytes");

    const back = await cluster.add("c", flags);
    await eventually(async () => await get(a, "kept") === "kept on disk", "a finds kept on c");
    await eventually(async () => await get(back, "deleted") === 404, "c dropped deleted");
    assertEquals(await get(back, "replaced"), "the new bytes");
    assertEquals(await get(a, "deleted"), 404);
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test(
  "a daemon of a Redis cluster restarted with --data-dir announces what it holds",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using dir = await clusterDir();
    const flags = ["--impl", "fs", "--data-dir", `${dir.path}/data`];
    await using b = await startClusterDaemon(redis.url, dir.path, "b");
    const a = await startClusterDaemon(redis.url, dir.path, "a", "cluster", flags);
    const token = REDIS_TOKEN;
    await put({ url: a.url, token }, "kept", "kept on disk");
    await a.stop();
    assertEquals(await get({ url: b.url, token }, "kept"), 404);
    await using _back = await startClusterDaemon(redis.url, dir.path, "a", "cluster", flags);
    await eventually(
      async () => await get({ url: b.url, token }, "kept") === "kept on disk",
      "b finds kept on a",
    );
  },
);
