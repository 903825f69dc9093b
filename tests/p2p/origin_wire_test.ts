/** Bad input to the read-through is refused with a typed error and changes nothing. */
import { InvalidArgumentError, MemoryPeer, ProtocolError, ReadThrough } from "../../mod.ts";
import { originRequest } from "../../transport/origin_fetch.ts";
import { parseProgress } from "../../p2p/origin/progress.ts";
import { parseClaim } from "../../p2p/directory/wire.ts";
import { serveHttp } from "../../transport/http/server.ts";
import { originRoutes } from "../../p2p/origin/routes.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

Deno.test("origin requests: only http(s) URLs, string header pairs, known cache modes", () => {
  assertEquals(
    originRequest({ url: "https://a.example/x#frag", headers: [] }).url,
    "https://a.example/x",
  );
  for (
    const bad of [
      null,
      { url: "ftp://a.example/x", headers: [] },
      { url: "not a url", headers: [] },
      { url: "https://a.example/x", headers: [["a"]] },
      { url: "https://a.example/x", headers: [["a", 1]] },
      { url: "https://a.example/x", headers: [], cache: "sometimes" },
    ]
  ) {
    assertThrows(() => originRequest(bad), InvalidArgumentError);
  }
});

Deno.test("progress and claim messages: malformed ones are protocol errors", async () => {
  await using peer = new MemoryPeer({ capacity: 1 << 20 });
  const readThrough = new ReadThrough({ peer });
  try {
    for (
      const bad of [null, {}, { id: "x" }, { id: "", holder: { node: "a", address: "http://a:1" } }]
    ) {
      assertThrows(() => readThrough.progress(bad), ProtocolError);
    }
    // A well-formed ask about a download this daemon does not lead.
    assertEquals(
      readThrough.progress({ id: "x", holder: { node: "a", address: "http://127.0.0.1:1" } }),
      { state: "none" },
    );
    for (
      const bad of [
        { state: "dancing" },
        { state: "downloading", size: -1 },
        { state: "downloading", digests: ["md5:zz"] },
        { state: "downloading", meta: [] },
        { state: "done", digest: "nope" },
      ]
    ) {
      assertThrows(() => parseProgress(bad), ProtocolError);
    }
    for (
      const bad of [
        { key: "k", holder: { node: "a", address: "http://127.0.0.1:1" }, ttl: 0 },
        { key: "k", holder: { node: "a", address: "http://127.0.0.1:1" }, ttl: 1e9 },
        { key: "", holder: { node: "a", address: "http://127.0.0.1:1" }, ttl: 10 },
        { key: "k", holder: { node: "a", address: "ftp://x" }, ttl: 10 },
        { key: "k", holder: { node: "a", address: "http://127.0.0.1:1" }, ttl: 10, force: 1 },
      ]
    ) {
      assertThrows(() => parseClaim(bad), ProtocolError);
    }
  } finally {
    readThrough.close();
  }
});

Deno.test("GET /v1/fetch refuses a bad URL with 400 and a typed error", async () => {
  await using peer = new MemoryPeer({ capacity: 1 << 20 });
  const readThrough = new ReadThrough({ peer });
  await using server = serveHttp(peer, {
    port: 0,
    token: "t",
    routes: originRoutes(readThrough, peer),
  });
  try {
    for (const url of ["ftp://a.example/x", ""]) {
      const response = await fetch(`${server.url}/v1/fetch?url=${encodeURIComponent(url)}`, {
        headers: { authorization: "Bearer t" },
      });
      assertEquals(response.status, 400);
      assertEquals((await response.json()).error.code, "INVALID_ARGUMENT");
    }
    const progress = await fetch(`${server.url}/v1/cluster/origin/progress`, {
      method: "POST",
      headers: { authorization: "Bearer t" },
      body: "{not json",
    });
    assertEquals(progress.status, 400);
    await progress.body?.cancel();
    assertEquals((await peer.list()).length, 0);
  } finally {
    readThrough.close();
  }
});
