/** `client.fetch` on a peer in this process and over HTTP, against a local origin. */
import { connect, MemoryPeer, originRoutes, ReadThrough, serveHttp } from "../../mod.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { startOrigin } from "../integrations/origin.ts";

const files = {
  "/fresh": {
    body: "fresh bytes",
    headers: { "cache-control": "max-age=3600", date: new Date().toUTCString(), etag: '"f"' },
  },
  "/tagged": { body: "tagged bytes", headers: { etag: '"t1"' } },
  "/missing-here": { body: "gone", status: 404 },
};

Deno.test("client.fetch on an in-process peer: stored once, fresh copies served, stale revalidated", async () => {
  await using origin = startOrigin(files);
  await using client = await connect();
  const first = await client.fetch(`${origin.url}/fresh`);
  assertEquals(first.status, 200);
  assertEquals(first.headers.get("etag"), '"f"');
  assertEquals(await first.text(), "fresh bytes");
  assertEquals(await (await client.fetch(`${origin.url}/fresh#part`)).text(), "fresh bytes");
  assertEquals(origin.count("/fresh"), 1);
  assertEquals(await (await client.fetch(`${origin.url}/tagged`)).text(), "tagged bytes");
  assertEquals(await (await client.fetch(`${origin.url}/tagged`)).text(), "tagged bytes");
  assertEquals(origin.requests.slice(-2), ["GET /tagged", 'GET /tagged "t1"']);
  const missing = await client.fetch(`${origin.url}/missing-here`);
  assertEquals(missing.status, 404);
  assertEquals(await missing.text(), "gone");
  await assertRejects(
    () => client.fetch(`${origin.url}/never`, { cache: "only-if-cached" }),
    TypeError,
  );
  await assertRejects(() => client.fetch(`${origin.url}/fresh`, { method: "POST" }), TypeError);
});

Deno.test("client.fetch over HTTP: GET /v1/fetch, the body streamed from the daemon", async () => {
  await using origin = startOrigin(files);
  await using peer = new MemoryPeer({ capacity: 1 << 20 });
  const readThrough = new ReadThrough({ peer });
  await using server = serveHttp(peer, {
    port: 0,
    token: "t",
    routes: originRoutes(readThrough, peer),
  });
  try {
    await using client = await connect(server.url, { token: "t" });
    const response = await client.fetch(`${origin.url}/fresh`, {
      headers: { authorization: "Bearer for-the-origin" },
    });
    assertEquals(response.status, 200);
    assertEquals(await response.text(), "fresh bytes");
    const id = response.headers.get("packice-object")!;
    assertEquals((await client.stat(id)).size, "fresh bytes".length);
    assertEquals((await client.fetch(`${origin.url}/missing-here`)).status, 404);
    await assertRejects(
      () => client.fetch(`${origin.url}/never`, { cache: "only-if-cached" }),
      TypeError,
    );
  } finally {
    readThrough.close();
  }
});

Deno.test("client.fetch: a 304 serves the stored body with the headers it updated", async () => {
  let asked = 0;
  await using origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    asked++;
    if (request.headers.get("if-none-match") === '"v"') {
      return new Response(null, {
        status: 304,
        headers: { etag: '"v"', "x-checked": String(asked) },
      });
    }
    return new Response("body", { headers: { etag: '"v"', "x-checked": "0" } });
  });
  await using client = await connect();
  const url = `http://127.0.0.1:${origin.addr.port}/x`;
  const first = await client.fetch(url);
  assertEquals(first.headers.get("x-checked"), "0");
  assertEquals(await first.text(), "body");
  const again = await client.fetch(url);
  assertEquals(again.headers.get("x-checked"), "2");
  assertEquals(await again.text(), "body");
});

Deno.test("client.fetch answers a Range from the stored response with a 206 of those bytes", async () => {
  await using origin = startOrigin(files);
  await using client = await connect();
  await (await client.fetch(`${origin.url}/fresh`)).body?.cancel();
  const range = async (header: string, init: RequestInit = {}) => {
    const response = await client.fetch(`${origin.url}/fresh`, {
      ...init,
      headers: { range: header, ...init.headers },
    });
    return [
      response.status,
      response.headers.get("content-range"),
      response.headers.get("content-length"),
      await response.text(),
    ];
  };
  assertEquals(await range("bytes=6-10"), [206, "bytes 6-10/11", "5", "bytes"]);
  assertEquals(await range("bytes=-5"), [206, "bytes 6-10/11", "5", "bytes"]);
  assertEquals(await range("bytes=0-"), [206, "bytes 0-10/11", "11", "fresh bytes"]);
  assertEquals(await range("bytes=11-"), [416, "bytes */11", null, ""]);
  // Several ranges: the whole response, as RFC 9110 allows.
  assertEquals(await range("bytes=0-1,3-4"), [200, null, "11", "fresh bytes"]);
  // An If-Range of the stored ETag gets the span; of another version, the whole response.
  assertEquals(await range("bytes=0-1", { headers: { "if-range": '"f"' } }), [
    206,
    "bytes 0-1/11",
    "2",
    "fr",
  ]);
  assertEquals(await range("bytes=0-1", { headers: { "if-range": '"old"' } }), [
    200,
    null,
    "11",
    "fresh bytes",
  ]);
  assertEquals(origin.count("/fresh"), 1);
});
