/**
 * A 304 on revalidation refreshes the response headers stored with the body
 * (RFC 9111 §4.3.4): later answers carry them, and the freshness it grants
 * holds, so a fresh response is not revalidated again on each fetch. An
 * `Authorization` sent to the origin is still never stored; the origin
 * counts reach `client.metrics()` over the Unix socket.
 */
import { connect } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { startCluster } from "./cluster_daemons.ts";

const SECRET = "Bearer s3cret-revalidation";

/** An origin whose first answer is fresh for 1 s, and whose 304s refresh it for a minute. */
function startRefreshingOrigin() {
  const statuses: number[] = [];
  const abort = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: abort.signal,
    onListen: () => {},
  }, (request) => {
    const revalidation = request.headers.get("if-none-match") === '"r1"';
    statuses.push(revalidation ? 304 : 200);
    if (revalidation) {
      return new Response(null, {
        status: 304,
        headers: {
          etag: '"r1"',
          "cache-control": "max-age=60",
          "x-version": String(statuses.length),
          "set-cookie": "session=never-stored",
          "content-length": "999",
        },
      });
    }
    return new Response("the body", {
      headers: { etag: '"r1"', "cache-control": "max-age=1", "x-version": "1" },
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/file`,
    statuses,
    [Symbol.asyncDispose]: async () => {
      abort.abort();
      await server.finished;
    },
  };
}

Deno.test("a 304 refreshes the stored headers: later fetches carry them and are fresh by them", async () => {
  await using origin = startRefreshingOrigin();
  await using cluster = await startCluster(["solo"]);
  await using client = await connect(cluster.daemons[0]!.socket);
  const fetchOnce = async () => {
    const response = await client.fetch(origin.url, { headers: { authorization: SECRET } });
    assertEquals(await response.text(), "the body");
    return response.headers;
  };
  assertEquals((await fetchOnce()).get("x-version"), "1");
  // Stale after 1 s: revalidated, and the 304's headers replace the stored ones.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const refreshed = await fetchOnce();
  assertEquals(origin.statuses, [200, 304]);
  assertEquals(refreshed.get("x-version"), "2");
  assertEquals(refreshed.get("cache-control"), "max-age=60");
  assertEquals(refreshed.get("content-length"), "8");
  assertEquals(refreshed.get("set-cookie"), null);
  // Fresh for a minute by the refreshed headers: answered with no trip to the origin.
  const later = await fetchOnce();
  assertEquals(origin.statuses, [200, 304]);
  assertEquals([later.get("x-version"), later.get("cache-control")], ["2", "max-age=60"]);
  const id = later.get("packice-object")!;
  for (const object of [await client.stat(id), ...await client.list()]) {
    assert(!JSON.stringify(object.meta).includes("s3cret"), JSON.stringify(object.meta));
  }
  const metrics = await client.metrics();
  assertEquals(
    [
      metrics.origin_trips_total,
      metrics.origin_not_modified_total,
      metrics.origin_cluster_hits_total,
    ],
    [2, 1, 1],
  );
  assertEquals(metrics.origin_bytes_total, 8);
});
