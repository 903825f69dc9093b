/**
 * The read-through across real daemons (embedded directory): many fetches of
 * one URL at once make one download from the origin, the others pull its
 * pieces while it downloads.
 */
import { connect, originId } from "../../mod.ts";
import { startClusterDaemon } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { type ClusterDaemon, converged, startCluster, TOKEN } from "./cluster_daemons.ts";
import { startCountingOrigin } from "./counting_origin.ts";

/** Reads `url` through the daemon's socket, `times` at once; checks each body. */
async function fetchAll(
  daemon: ClusterDaemon,
  url: string,
  expected: Uint8Array,
  times: number,
  init?: RequestInit,
): Promise<void> {
  await using client = await connect(daemon.socket);
  await Promise.all(Array.from({ length: times }, async () => {
    const response = await client.fetch(url, init);
    assertEquals(response.status, 200);
    const body = new Uint8Array(await response.arrayBuffer());
    assert(sameBytes(body, expected), `the body through ${daemon.node}`);
  }));
}

Deno.test("many fetches of one URL across 4 daemons: exactly one download from the origin", async () => {
  const body = pattern(24 << 20, 3);
  // Slow enough that each piece has time to go round the followers before the next, and
  // before the download ends (then the downloader offers every piece), on a loaded machine too.
  await using origin = startCountingOrigin({ body, rate: 8e6 });
  await using cluster = await startCluster(["a", "b", "c", "d"]);
  await converged(cluster.daemons);
  await Promise.all(cluster.daemons.map((daemon) => fetchAll(daemon, origin.url, body, 3)));
  assertEquals(
    origin.requests.length,
    1,
    JSON.stringify(origin.requests) + cluster.daemons.map((d) => d.stderr()).join("\n"),
  );
  assert(origin.sent <= 1.05 * body.length, `origin sent ${origin.sent} bytes`);
  // Later fetches anywhere come from the cluster.
  await fetchAll(cluster.daemons[3]!, origin.url, body, 1, { cache: "force-cache" });
  assertEquals(origin.requests.length, 1);
  const trips = await Promise.all(
    cluster.daemons.map((daemon) => daemon.metric("packice_origin_trips_total")),
  );
  assertEquals(trips.reduce((a, b) => a + b, 0), 1, `trips per daemon: ${trips}`);
  const downstream = await Promise.all(
    cluster.daemons.map((daemon) => daemon.metric("packice_origin_downstream_total")),
  );
  assert(downstream.reduce((a, b) => a + b, 0) >= 1, `downstream per daemon: ${downstream}`);
  // Followers relayed pieces to each other: ranges served by daemons other than the downloader.
  const served = await Promise.all(cluster.daemons.map(async (daemon) => {
    const text = await (await fetch(`${daemon.url}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })).text();
    const line = text.split("\n").find((l) =>
      l.startsWith('packice_http_requests_total{route="GET /v1/objects/:id",status="206"}')
    );
    // Ranges a relay's native listener answered itself never reach the Deno server.
    const own = /^packice_http_fast_relay_served_total (\S+)$/m.exec(text)?.[1];
    return Number(line?.split(" ").at(-1) ?? 0) + Number(own ?? 0);
  }));
  const leader = trips.findIndex((count) => count === 1);
  const relayed = served.filter((_, i) => i !== leader).reduce((a, b) => a + b, 0);
  assert(relayed > 0, `pieces served per daemon: ${served} (downloader ${leader})`);
  // Each new piece goes to one follower first (super-seeding): the downloader sends the
  // object about once, not once per follower (3 x 6 pieces).
  assert(served[leader]! <= 12, `the downloader served ${served[leader]} pieces of 6`);
});

Deno.test(
  "with --redis: fetches of one URL on 3 daemons, one download (the claim in Redis)",
  redisTestOptions,
  async () => {
    const body = pattern(12 << 20, 4);
    await using origin = startCountingOrigin({ body, rate: 24e6 });
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-origin-redis-" });
    try {
      const daemons = await Promise.all(
        ["r1", "r2", "r3"].map((node) => startClusterDaemon(redis.url, dir, node, "origin")),
      );
      try {
        await Promise.all(daemons.map(async (daemon) => {
          await using client = await connect(daemon.socket);
          const response = await client.fetch(origin.url);
          assert(sameBytes(new Uint8Array(await response.arrayBuffer()), body));
        }));
        assertEquals(origin.requests.length, 1, JSON.stringify(origin.requests));
        assertEquals(await redis.command("EXISTS", `origin:claim:{${originId(origin.url)}}`), 0);
      } finally {
        await Promise.all(daemons.map((daemon) => daemon.stop()));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
