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

/**
 * A local origin at `path`: `answer(request, n)` answers its n-th request
 * (from 1); `asked` lists each request's `If-None-Match`, else
 * `If-Modified-Since`, else null.
 */
function startOrigin(path: string, answer: (request: Request, n: number) => Response) {
  const asked: (string | null)[] = [];
  const abort = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: abort.signal,
    onListen: () => {},
  }, (request) => {
    asked.push(
      request.headers.get("if-none-match") ?? request.headers.get("if-modified-since"),
    );
    return answer(request, asked.length);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}${path}`,
    asked,
    [Symbol.asyncDispose]: async () => {
      abort.abort();
      await server.finished;
    },
  };
}

/** An origin whose first answer is fresh for 1 s, and whose 304s refresh it for a minute. */
function startRefreshingOrigin() {
  const statuses: number[] = [];
  const origin = startOrigin("/file", (request, n) => {
    const revalidation = request.headers.get("if-none-match") === '"r1"';
    statuses.push(revalidation ? 304 : 200);
    if (revalidation) {
      return new Response(null, {
        status: 304,
        headers: {
          etag: '"r1"',
          "cache-control": "max-age=60",
          "x-version": String(n),
          "set-cookie": "session=never-stored",
          "content-length": "999",
        },
      });
    }
    return new Response("the body", {
      headers: { etag: '"r1"', "cache-control": "max-age=1", "x-version": "1" },
    });
  });
  return { ...origin, statuses };
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

/** An origin that ignores conditional requests: always a 200 with `etag` and a body of `size()` bytes. */
function startUnconditionalOrigin(etag: string, size: () => number) {
  return startOrigin(
    "/blob",
    () => new Response(new Uint8Array(size()).fill(7), { headers: { etag } }),
  );
}

Deno.test("a 200 with the stored strong ETag and length is not downloaded again; a weak one or another length is", async (t) => {
  const SIZE = 1 << 20;
  await using cluster = await startCluster(["solo"]);
  await using client = await connect(cluster.daemons[0]!.socket);
  const fetchTwice = async (origin: { url: string }) => {
    const before = await client.metrics();
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const response = await client.fetch(origin.url);
      const object = await client.stat(response.headers.get("packice-object")!);
      assertEquals((await response.bytes()).length, object.size);
      ids.push(JSON.stringify(object.meta));
    }
    const after = await client.metrics();
    const grew = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    return {
      bytes: grew("origin_bytes_total"),
      notModified: grew("origin_not_modified_total"),
      sameObject: ids[0] === ids[1],
    };
  };

  await t.step("same strong ETag and length: kept", async () => {
    await using origin = startUnconditionalOrigin('"s1"', () => SIZE);
    const seen = await fetchTwice(origin);
    assertEquals(origin.asked, [null, '"s1"'], "the second fetch revalidates");
    assertEquals(seen, { bytes: SIZE, notModified: 1, sameObject: true });
  });
  await t.step("a weak ETag promises no bytes: downloaded again", async () => {
    await using origin = startUnconditionalOrigin('W/"w1"', () => SIZE);
    const seen = await fetchTwice(origin);
    assertEquals(seen, { bytes: 2 * SIZE, notModified: 0, sameObject: false });
  });
  await t.step("the same strong ETag with another length: downloaded again", async () => {
    let asked = 0;
    await using origin = startUnconditionalOrigin('"s2"', () => asked++ === 0 ? SIZE : SIZE + 1);
    const seen = await fetchTwice(origin);
    assertEquals(seen, { bytes: 2 * SIZE + 1, notModified: 0, sameObject: false });
  });
});

Deno.test("a 200 to a revalidation is the new version's download: one request, not two", async (t) => {
  await using cluster = await startCluster(["solo"]);
  await using client = await connect(cluster.daemons[0]!.socket);
  /** An origin that ignores conditional requests; `head(n)` are the headers of its n-th answer. */
  const startChanging = (head: (n: number) => Record<string, string>) =>
    startOrigin("/changing", (_, n) => new Response(`version ${n}`, { headers: head(n) }));
  const bodies = async (url: string) => [
    await (await client.fetch(url)).text(),
    await (await client.fetch(url)).text(),
  ];

  await t.step("a new ETag", async () => {
    await using origin = startChanging((n) => ({ etag: `"v${n}"` }));
    assertEquals(await bodies(origin.url), ["version 1", "version 2"]);
    assertEquals(origin.asked, [null, '"v1"']);
  });
  await t.step("Last-Modified only, If-Modified-Since ignored", async () => {
    const modified = "Mon, 01 Jan 2024 00:00:00 GMT";
    await using origin = startChanging(() => ({ "last-modified": modified }));
    assertEquals(await bodies(origin.url), ["version 1", "version 2"]);
    assertEquals(origin.asked, [null, modified]);
  });
});
