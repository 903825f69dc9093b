/**
 * `cachedFetch` on clients of daemons in a cluster: GETs go to the daemons'
 * read-through, one download per cluster, with `init.cache` and
 * revalidation as before.
 */
import { connect } from "../../mod.ts";
import { createCachedFetch, PackiceCacheStorage } from "../../integrations/mod.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { startOrigin } from "./origin.ts";
import { converged, startCluster } from "../p2p/cluster_daemons.ts";

Deno.test("cachedFetch through daemons in a cluster: one download per cluster, init.cache kept", async () => {
  await using origin = startOrigin({
    "/model.bin": { body: "weights".repeat(1000), headers: { etag: '"v1"' }, delay: 200 },
    "/fresh": {
      body: "fresh",
      headers: { "cache-control": "max-age=3600", date: new Date().toUTCString() },
    },
  });
  await using cluster = await startCluster(["a", "b", "c"]);
  await converged(cluster.daemons);
  const clients = await Promise.all(cluster.daemons.map((daemon) => connect(daemon.socket)));
  try {
    // The cache serves peers in this process only: never opened here.
    const fetches = clients.map((client) =>
      createCachedFetch({ client, cache: () => new PackiceCacheStorage(client).open("fetch") })
    );
    const url = `${origin.url}/model.bin`;
    const bodies = await Promise.all(fetches.map(async (fetch) => await (await fetch(url)).text()));
    for (const body of bodies) assertEquals(body, "weights".repeat(1000));
    assertEquals(origin.requests, ["GET /model.bin"]);
    // Stale by its headers: revalidated (304), not downloaded again.
    assertEquals(await (await fetches[1]!(url)).text(), "weights".repeat(1000));
    assertEquals(origin.requests, ["GET /model.bin", 'GET /model.bin "v1"']);
    // force-cache and only-if-cached never ask the origin.
    assertEquals(
      await (await fetches[2]!(url, { cache: "force-cache" })).text(),
      "weights".repeat(1000),
    );
    await assertRejects(
      () => fetches[2]!(`${origin.url}/fresh`, { cache: "only-if-cached" }),
      TypeError,
    );
    // A fresh response is served without asking again; HEAD from the stored head.
    assertEquals(await (await fetches[0]!(`${origin.url}/fresh`)).text(), "fresh");
    assertEquals(await (await fetches[1]!(`${origin.url}/fresh`)).text(), "fresh");
    const head = await fetches[2]!(`${origin.url}/fresh`, { method: "HEAD" });
    assertEquals(head.status, 200);
    assertEquals(origin.count("/fresh"), 1);
    // reload goes to the origin again.
    await (await fetches[0]!(url, { cache: "reload" })).body?.cancel();
    assertEquals(origin.count("/model.bin"), 3);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
});
