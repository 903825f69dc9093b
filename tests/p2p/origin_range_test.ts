/**
 * A `Range` through a real daemon's read-through, over HTTP (`/v1/fetch`,
 * curl) and the Unix socket, for URLs stored already and not yet; and the
 * URL a redirected response reports.
 */
import { connect } from "../../mod.ts";
import { createCachedFetch } from "../../integrations/mod.ts";
import { assertEquals } from "../helpers/assert.ts";
import { startClusterDaemon, TOKEN } from "../helpers/cluster.ts";

const SIZE = 300_000;
const body = new Uint8Array(SIZE).map((_, i) => (i * 7 + 3) & 255);

/** An origin of `/a`, `/b`, `/c`, `/d` (the body above, ETag "v1") and `/old` (302 to `/d`). */
function startOrigin() {
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const path = new URL(request.url).pathname;
    seen.push(`${path} ${request.headers.get("range") ?? ""}`.trim());
    if (path === "/old") return Response.redirect(new URL("/d", request.url), 302);
    return new Response(body, { headers: { etag: '"v1"', "cache-control": "max-age=3600" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    [Symbol.asyncDispose]: () => server[Symbol.asyncDispose](),
  };
}

/** Bytes as a short text to compare: a large diff would take the test runner minutes. */
function shown(bytes: Uint8Array): string {
  let hash = 0;
  for (const byte of bytes) hash = (hash * 31 + byte) >>> 0;
  return `${bytes.length} bytes, hash ${hash}`;
}

Deno.test("a Range through the daemon's /v1/fetch and client.fetch: 206 from one download", async () => {
  const dir = await Deno.makeTempDir();
  await using origin = startOrigin();
  await using daemon = await startClusterDaemon(undefined, dir, "a");
  try {
    const through = (path: string, headers: Record<string, string> = {}, method = "GET") =>
      fetch(`${daemon.url}/v1/fetch?url=${encodeURIComponent(origin.url + path)}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, ...headers },
      });
    const answer = async (response: Response) => [
      response.status,
      response.headers.get("content-range"),
      response.headers.get("content-length"),
      shown(new Uint8Array(await response.arrayBuffer())),
    ];
    // Not stored yet: the whole object is downloaded, the span answered from it.
    assertEquals(await answer(await through("/a", { range: "bytes=100-199" })), [
      206,
      `bytes 100-199/${SIZE}`,
      "100",
      shown(body.slice(100, 200)),
    ]);
    // Stored: a suffix, an open end, one past the end, several spans, If-Range, HEAD.
    assertEquals(await answer(await through("/a", { range: "bytes=-10" })), [
      206,
      `bytes ${SIZE - 10}-${SIZE - 1}/${SIZE}`,
      "10",
      shown(body.slice(SIZE - 10)),
    ]);
    assertEquals(await answer(await through("/a", { range: "bytes=299990-" })), [
      206,
      `bytes 299990-${SIZE - 1}/${SIZE}`,
      "10",
      shown(body.slice(299990)),
    ]);
    assertEquals(await answer(await through("/a", { range: `bytes=${SIZE}-` })), [
      416,
      `bytes */${SIZE}`,
      "0",
      shown(new Uint8Array()),
    ]);
    assertEquals(await answer(await through("/a", { range: "bytes=0-1,5-6" })), [
      200,
      null,
      String(SIZE),
      shown(body),
    ]);
    assertEquals(
      (await answer(await through("/a", { range: "bytes=0-9", "if-range": '"v1"' }))).slice(0, 2),
      [206, "bytes 0-9/300000"],
    );
    assertEquals(
      (await answer(await through("/a", { range: "bytes=0-9", "if-range": '"v0"' }))).slice(0, 3),
      [200, null, String(SIZE)],
    );
    const head = await through("/a", { range: "bytes=0-9" }, "HEAD");
    assertEquals(
      [head.status, head.headers.get("content-length"), head.headers.get("accept-ranges")],
      [200, String(SIZE), "bytes"],
    );
    await head.body?.cancel();

    // curl resuming a download cut short (-C -) gets the rest with a 206.
    await Deno.writeFile(`${dir}/part.bin`, body.slice(0, 1000));
    const curl = await new Deno.Command("curl", {
      // Under `deno task test:asan` this process preloads ASAN's runtime, with which curl hangs.
      env: { LD_PRELOAD: "" },
      args: [
        "--max-time",
        "30",
        "-sf",
        "-C",
        "-",
        "-o",
        `${dir}/part.bin`,
        "-H",
        `Authorization: Bearer ${TOKEN}`,
        `${daemon.url}/v1/fetch?url=${encodeURIComponent(origin.url + "/a")}`,
      ],
    }).output();
    assertEquals(curl.code, 0, new TextDecoder().decode(curl.stderr));
    assertEquals(shown(await Deno.readFile(`${dir}/part.bin`)), shown(body));

    // client.fetch over the socket and over HTTP, on URLs not stored yet.
    await using socket = await connect(daemon.socket);
    const viaSocket = await socket.fetch(`${origin.url}/b`, { headers: { range: "bytes=10-19" } });
    assertEquals(await answer(viaSocket), [
      206,
      `bytes 10-19/${SIZE}`,
      "10",
      shown(body.slice(10, 20)),
    ]);
    await using http = await connect(daemon.url, { token: TOKEN });
    const viaHttp = await http.fetch(`${origin.url}/c`, { headers: { range: "bytes=-5" } });
    assertEquals(await answer(viaHttp), [
      206,
      `bytes ${SIZE - 5}-${SIZE - 1}/${SIZE}`,
      "5",
      shown(body.slice(SIZE - 5)),
    ]);
    assertEquals(
      (await answer(await http.fetch(`${origin.url}/a`, { headers: { range: "bytes=1-2" } })))
        .slice(0, 2),
      [206, "bytes 1-2/300000"],
    );
    // One download of each, never with the client's Range.
    assertEquals(origin.seen.sort(), ["/a", "/b", "/c"]);
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client.fetch of a redirected URL reports the origin's last URL, over the socket and HTTP", async () => {
  const dir = await Deno.makeTempDir();
  await using origin = startOrigin();
  await using daemon = await startClusterDaemon(undefined, dir, "a");
  try {
    await using socket = await connect(daemon.socket);
    await using http = await connect(daemon.url, { token: TOKEN });
    for (const client of [socket, http, socket]) {
      const response = await client.fetch(`${origin.url}/old`);
      assertEquals(
        [response.status, response.url, response.redirected],
        [200, `${origin.url}/d`, true],
      );
      assertEquals(shown(new Uint8Array(await response.arrayBuffer())), shown(body));
    }
    // cachedFetch on a daemon's client says the same.
    const cached = await createCachedFetch({
      client: socket,
      cache: () => Promise.reject(new Error("unused")),
    })(`${origin.url}/old`);
    assertEquals([cached.url, cached.redirected], [`${origin.url}/d`, true]);
    await cached.body?.cancel();
    const plain = await socket.fetch(`${origin.url}/a`);
    assertEquals([plain.url, plain.redirected], [`${origin.url}/a`, false]);
    await plain.body?.cancel();
    // Stored under the URL asked for: one trip through the redirect.
    assertEquals(origin.seen, ["/old", "/d", "/a"]);
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a Range over /v1/fetch of a URL on its way is answered before the download ends", async () => {
  const dir = await Deno.makeTempDir();
  const big = new Uint8Array(8 << 20).map((_, i) => (i * 13 + 5) & 255);
  const half = big.length / 2;
  const gate = Promise.withResolvers<void>();
  // Without early answers the span would wait for the whole download: the origin goes on after
  // 10 s all the same, and the test fails instead of hanging.
  let released = false;
  const release = () => {
    released = true;
    gate.resolve();
  };
  const fallback = setTimeout(release, 10_000);
  let asked = 0;
  await using _origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      asked++;
      // The first half at once, the rest once the test has its span.
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(big.slice(0, half));
          await gate.promise;
          controller.enqueue(big.slice(half));
          controller.close();
        },
      });
      return new Response(body, {
        headers: { "content-length": String(big.length), etag: '"big"' },
      });
    },
  );
  const originUrl = `http://127.0.0.1:${_origin.addr.port}/big`;
  await using daemon = await startClusterDaemon(undefined, dir, "a");
  try {
    const through = (range: string) =>
      fetch(`${daemon.url}/v1/fetch?url=${encodeURIComponent(originUrl)}`, {
        headers: { authorization: `Bearer ${TOKEN}`, range },
      });
    const first = await through("bytes=100-199");
    assertEquals(released, false, "answered while the download was under way");
    assertEquals(
      [first.status, first.headers.get("content-range"), first.headers.get("etag")],
      [206, `bytes 100-199/${big.length}`, '"big"'],
    );
    assertEquals(shown(new Uint8Array(await first.arrayBuffer())), shown(big.slice(100, 200)));
    // A span across the half not yet there: its first bytes now, the rest once they come.
    const across = await through(`bytes=${half - 10}-${half + 9}`);
    assertEquals(across.status, 206);
    const reader = across.body!.getReader();
    const got: number[] = [];
    const firstChunk = await reader.read();
    got.push(...firstChunk.value!);
    assertEquals(got, [...big.slice(half - 10, half)]);
    assertEquals(released, false);
    release();
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      got.push(...next.value);
    }
    assertEquals(got, [...big.slice(half - 10, half + 10)]);
    assertEquals(asked, 1);
  } finally {
    clearTimeout(fallback);
    release();
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
