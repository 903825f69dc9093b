/**
 * The HTTP server against real sockets: every request goes through
 * `Deno.serve` on a free loopback port, with raw `fetch` or raw TCP.
 */
import {
  formatRequest,
  type HttpRequestEntry,
  type HttpServer,
  InvalidArgumentError,
  MemoryPeer,
  serveHttp,
} from "../../../mod.ts";
import { startDaemon } from "../../../daemon/daemon.ts";
import { createLogger } from "../../../daemon/log.ts";
import { parseServeArgs } from "../../../daemon/options.ts";
import { type HttpFixture, readRest, startHttp } from "../../helpers/http_fixture.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";
import { exists } from "../../helpers/uds_daemon.ts";

const encoder = new TextEncoder();

/** Bytes with a pattern, so misplaced ranges show. */
function pattern(length: number, seed = 0): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 12)) & 255;
  return bytes;
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return await response.json();
}

/** Asserts an error response: status and the `{ error: { code, message } }` body. */
async function assertError(response: Response, status: number, code: string): Promise<string> {
  const body = await response.text();
  assertEquals(response.status, status, body);
  assertEquals(response.headers.get("content-type"), "application/json");
  const { error } = JSON.parse(body);
  assertEquals(error.code, code, body);
  assert(typeof error.message === "string" && /^[A-Z]/.test(error.message), error.message);
  return error.message;
}

async function put(
  fixture: HttpFixture,
  id: string,
  bytes: Uint8Array<ArrayBuffer>,
  headers: HeadersInit = {},
) {
  const response = await fixture.fetch(`/v1/objects/${id}`, {
    method: "PUT",
    body: bytes,
    headers,
  });
  assertEquals(response.status, 201, await response.clone().text());
  return await json(response);
}

/** Sends raw bytes on a new TCP connection to the server, then closes it. */
async function sendRaw(server: HttpServer, ...parts: Array<string | Uint8Array>): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    for (const part of parts) {
      await conn.write(typeof part === "string" ? encoder.encode(part) : part);
    }
  } finally {
    conn.close();
  }
}

Deno.test("PUT then GET round-trips bytes with ETag, Content-Type and Content-Length", async () => {
  await using fixture = startHttp();
  const bytes = pattern(3 << 20);
  const info = await put(fixture, "photo", bytes, {
    "packice-meta": JSON.stringify({ "content-type": "image/png", owner: "ann" }),
  });
  assertEquals([info.id, info.state, info.size, info.meta], [
    "photo",
    "SEALED",
    bytes.length,
    { "content-type": "image/png", owner: "ann" },
  ]);
  const response = await fixture.fetch("/v1/objects/photo");
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "image/png");
  assertEquals(response.headers.get("content-length"), String(bytes.length));
  assertEquals(response.headers.get("accept-ranges"), "bytes");
  const etag = response.headers.get("etag")!;
  assert(/^"(xxh64|sha256):[0-9a-f]+"$/.test(etag), etag);
  assertEquals(new Uint8Array(await response.arrayBuffer()), bytes);
  // The digest is remembered by the peer and the same bytes give the same tag.
  assertEquals(`"${(await fixture.peer.stat("photo")).digest}"`, etag);
  await put(fixture, "copy", bytes);
  const copy = await fixture.fetch("/v1/objects/copy");
  await copy.body?.cancel();
  assertEquals(copy.headers.get("etag"), etag);
  assertEquals(copy.headers.get("content-type"), "application/octet-stream");
  await put(fixture, "other", pattern(3 << 20, 1));
  const other = await fixture.fetch("/v1/objects/other", { method: "HEAD" });
  assert(other.headers.get("etag") !== etag);
  assertEquals((await fixture.peer.stats()).leases, 0);
});

Deno.test("POST /v1/objects stores under a fresh id and answers with its Location", async () => {
  await using fixture = startHttp();
  const response = await fixture.fetch("/v1/objects", { method: "POST", body: "fresh" });
  assertEquals(response.status, 201);
  const info = await json(response);
  assertEquals(response.headers.get("location"), `/v1/objects/${info.id}`);
  assertEquals(await (await fixture.fetch(`/v1/objects/${info.id}`)).text(), "fresh");
});

Deno.test("GET with one Range answers 206, and 416 past the end", async () => {
  await using fixture = startHttp();
  const bytes = pattern(5 << 20);
  await put(fixture, "r", bytes);
  for (
    const [header, start, end] of [
      ["bytes=0-0", 0, 1],
      ["bytes=1000-3000000", 1000, 3000001],
      ["bytes=5000000-", 5000000, bytes.length],
      ["bytes=-10", bytes.length - 10, bytes.length],
    ] as const
  ) {
    const response = await fixture.fetch("/v1/objects/r", { headers: { range: header } });
    assertEquals(response.status, 206, header);
    assertEquals(
      response.headers.get("content-range"),
      `bytes ${start}-${end - 1}/${bytes.length}`,
    );
    assertEquals(response.headers.get("content-length"), String(end - start));
    assertEquals(new Uint8Array(await response.arrayBuffer()), bytes.subarray(start, end), header);
  }
  const past = await fixture.fetch("/v1/objects/r", {
    headers: { range: `bytes=${bytes.length}-` },
  });
  assertEquals(past.headers.get("content-range"), `bytes */${bytes.length}`);
  await assertError(past, 416, "INVALID_ARGUMENT");
  assertEquals((await fixture.peer.stats()).leases, 0);
});

Deno.test("GET with several ranges answers the whole object with 200, not 416", async () => {
  await using fixture = startHttp();
  const bytes = pattern(64 << 10);
  await put(fixture, "multi", bytes);
  const response = await fixture.fetch("/v1/objects/multi", {
    headers: { range: "bytes=0-1,4-5" },
  });
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-range"), null);
  assertEquals(new Uint8Array(await response.arrayBuffer()), bytes);
  assertEquals((await fixture.peer.stats()).leases, 0);
});

Deno.test("HEAD answers the headers of GET without a body", async () => {
  await using fixture = startHttp();
  await put(fixture, "h", encoder.encode("twelve bytes"), {
    "packice-meta": '{"content-type":"text/plain"}',
  });
  for (let round = 0; round < 2; round++) {
    // The first HEAD computes the digest under a lease; the second reads it from the directory.
    const response = await fixture.fetch("/v1/objects/h", { method: "HEAD" });
    assertEquals(response.status, 200);
    assertEquals(response.headers.get("content-length"), "12");
    assertEquals(response.headers.get("content-type"), "text/plain");
    assert(response.headers.get("etag") !== null);
    assertEquals(await response.text(), "");
  }
  assertEquals((await fixture.fetch("/v1/objects/none", { method: "HEAD" })).status, 404);
});

Deno.test("If-None-Match with the current ETag answers 304, with another the bytes", async () => {
  await using fixture = startHttp();
  await put(fixture, "c", encoder.encode("cached"));
  const first = await fixture.fetch("/v1/objects/c");
  const etag = first.headers.get("etag")!;
  await first.body?.cancel();
  for (const header of [etag, `W/${etag}`, `"nope", ${etag}`, "*"]) {
    const response = await fixture.fetch("/v1/objects/c", { headers: { "if-none-match": header } });
    assertEquals(response.status, 304, header);
    assertEquals(response.headers.get("etag"), etag);
    await response.body?.cancel();
  }
  const changed = await fixture.fetch("/v1/objects/c", { headers: { "if-none-match": '"old"' } });
  assertEquals([changed.status, await changed.text()], [200, "cached"]);
});

Deno.test("an object of several blobs reads as their concatenation", async () => {
  await using fixture = startHttp();
  const acquired = await json(
    await fixture.fetch("/v1/leases", {
      method: "POST",
      body: JSON.stringify({ objectId: "multi", access: "CREATE", size: [3, 4] }),
    }),
  );
  const lease = (acquired.lease as { id: string }).id;
  for (const [index, text] of [[0, "abc"], [1, "defg"]] as const) {
    const response = await fixture.fetch(`/v1/leases/${lease}/blobs/${index}`, {
      method: "PATCH",
      body: text,
    });
    assertEquals(response.status, 204);
  }
  assertEquals((await fixture.fetch(`/v1/leases/${lease}/seal`, { method: "POST" })).status, 200);
  assertEquals((await fixture.fetch(`/v1/leases/${lease}`, { method: "DELETE" })).status, 204);
  assertEquals(await (await fixture.fetch("/v1/objects/multi")).text(), "abcdefg");
  const range = await fixture.fetch("/v1/objects/multi", { headers: { range: "bytes=2-4" } });
  assertEquals([range.status, await range.text()], [206, "cde"]);
});

Deno.test("a multi-step upload writes parts at offsets, then seals", async () => {
  await using fixture = startHttp();
  const response = await fixture.fetch("/v1/leases", {
    method: "POST",
    body: JSON.stringify({ objectId: "parts", access: "CREATE", size: 10, meta: { k: 1 } }),
  });
  assertEquals(response.status, 201);
  const { lease, object } = await json(response) as {
    lease: { id: string; ttl: number };
    object: { state: string };
  };
  assertEquals([lease.ttl, object.state], [30_000, "CREATING"]);
  // Parts arrive out of order; a read of an unsealed object is refused.
  for (const [offset, text] of [[5, "56789"], [0, "01234"]] as const) {
    const write = await fixture.fetch(`/v1/leases/${lease.id}/blobs/0?offset=${offset}`, {
      method: "PATCH",
      body: text,
    });
    assertEquals(write.status, 204);
  }
  await assertError(await fixture.fetch("/v1/objects/parts"), 409, "NOT_SEALED");
  await assertError(
    await fixture.fetch(`/v1/leases/${lease.id}/blobs/0?offset=8`, {
      method: "PATCH",
      body: "abc",
    }),
    400,
    "INVALID_ARGUMENT",
  );
  const sealed = await json(await fixture.fetch(`/v1/leases/${lease.id}/seal`, { method: "POST" }));
  assertEquals([sealed.state, sealed.meta], ["SEALED", { k: 1 }]);
  await assertError(
    await fixture.fetch(`/v1/leases/${lease.id}/seal`, { method: "POST" }),
    409,
    "ALREADY_SEALED",
  );
  assertEquals((await fixture.fetch(`/v1/leases/${lease.id}`, { method: "DELETE" })).status, 204);
  assertEquals(await (await fixture.fetch("/v1/objects/parts")).text(), "0123456789");
  assertEquals((await fixture.peer.stats()).leases, 0);
});

Deno.test("an abandoned multi-step upload expires and is discarded; renew keeps one alive", async () => {
  await using fixture = startHttp({ leaseTtl: 5_000 });
  const acquire = async (objectId: string) => {
    const response = await fixture.fetch("/v1/leases", {
      method: "POST",
      body: JSON.stringify({ objectId, access: "CREATE", size: 4 }),
    });
    return ((await json(response)).lease as { id: string; expiresAt: number });
  };
  const abandoned = await acquire("abandoned");
  const kept = await acquire("kept");
  assertEquals(abandoned.expiresAt, fixture.clock.now() + 5_000);
  await fixture.fetch(`/v1/leases/${kept.id}/blobs/0`, { method: "PATCH", body: "ke" });
  fixture.clock.advance(4_000);
  const renewed = await fixture.fetch(`/v1/leases/${kept.id}/renew`, { method: "POST" });
  assertEquals((await json(renewed)).expiresAt, fixture.clock.now() + 5_000);
  fixture.clock.advance(4_000);
  assertEquals(await fixture.peer.sweep(), 1);
  assertEquals(await fixture.peer.has("abandoned"), false);
  await assertError(
    await fixture.fetch(`/v1/leases/${abandoned.id}/seal`, { method: "POST" }),
    410,
    "LEASE_EXPIRED",
  );
  await assertError(
    await fixture.fetch(`/v1/leases/${abandoned.id}/blobs/0`, { method: "PATCH", body: "x" }),
    404,
    "UNKNOWN_LEASE",
  );
  await fixture.fetch(`/v1/leases/${kept.id}/blobs/0?offset=2`, { method: "PATCH", body: "pt" });
  await (await fixture.fetch(`/v1/leases/${kept.id}/seal`, { method: "POST" })).body?.cancel();
  await fixture.fetch(`/v1/leases/${kept.id}`, { method: "DELETE" });
  assertEquals(await (await fixture.fetch("/v1/objects/kept")).text(), "kept");
  // The id of the abandoned upload is free again.
  await put(fixture, "abandoned", encoder.encode("back"));
});

Deno.test("an upload cut off mid-body is discarded, never sealed, and the server keeps serving", async () => {
  await using fixture = startHttp();
  await sendRaw(
    fixture.server,
    "PUT /v1/objects/cut HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n",
    pattern(300_000),
  );
  await eventually(async () => (await fixture.peer.stats()).leases === 0, "the upload ends");
  assertEquals(await fixture.peer.has("cut"), false);
  assertEquals((await fixture.peer.stats()).bytes, 0);
  // Chunked with a declared size, cut after the first chunk.
  await sendRaw(
    fixture.server,
    "PUT /v1/objects/cut HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\npackice-size: 100\r\n\r\n",
    "a\r\n0123456789\r\n",
  );
  await eventually(async () => (await fixture.peer.stats()).leases === 0, "the upload ends");
  assertEquals(await fixture.peer.has("cut"), false);
  await put(fixture, "cut", encoder.encode("whole"));
  assertEquals(await (await fixture.fetch("/v1/objects/cut")).text(), "whole");
});

Deno.test("a streamed upload shorter or longer than Packice-Size is refused and discarded", async () => {
  await using fixture = startHttp();
  for (const [declared, sent] of [[10, 5], [4, 6]] as const) {
    const response = await fixture.fetch("/v1/objects/wrong", {
      method: "PUT",
      headers: { "packice-size": String(declared) },
      body: ReadableStream.from([encoder.encode("abc"), encoder.encode("def".slice(0, sent - 3))]),
    });
    await assertError(response, 400, "PROTOCOL");
    assertEquals(await fixture.peer.has("wrong"), false);
  }
  const response = await fixture.fetch("/v1/objects/right", {
    method: "PUT",
    headers: { "packice-size": "6" },
    body: ReadableStream.from([encoder.encode("abc"), encoder.encode("def")]),
  });
  assertEquals(response.status, 201);
  await response.body?.cancel();
  assertEquals(await (await fixture.fetch("/v1/objects/right")).text(), "abcdef");
});

Deno.test("a reader mid-download keeps its bytes when the object is deleted", async () => {
  await using fixture = startHttp();
  const bytes = pattern(8 << 20);
  await put(fixture, "big", bytes);
  const response = await fixture.fetch("/v1/objects/big");
  const reader = response.body!.getReader();
  const first = await reader.read();
  assertEquals((await fixture.fetch("/v1/objects/big", { method: "DELETE" })).status, 204);
  assertEquals(await fixture.peer.has("big"), false);
  await put(fixture, "big", pattern(8 << 20, 3));
  const received = await readRest(reader, first.value!, bytes.length);
  assertEquals(received.length, bytes.length);
  assert(received.every((byte, i) => byte === bytes[i]), "the old bytes arrived whole");
  await eventually(
    async () => (await fixture.peer.stats()).bytes === 8 << 20,
    "the old bytes free",
  );
});

Deno.test("a client that disconnects mid-download ends the read lease", async () => {
  await using fixture = startHttp();
  await put(fixture, "big", pattern(16 << 20));
  const response = await fixture.fetch("/v1/objects/big");
  const reader = response.body!.getReader();
  await reader.read();
  assertEquals((await fixture.peer.stats()).leases, 1);
  await reader.cancel();
  await eventually(async () => (await fixture.peer.stats()).leases === 0, "the lease ends");
});

Deno.test("a token guards every route but /healthz, compared as a bearer token", async () => {
  await using fixture = startHttp({ token: "s3cret" });
  await assertError(await fixture.fetch("/v1/stats"), 401, "UNAUTHORIZED");
  await assertError(
    await fixture.fetch("/v1/stats", { headers: { authorization: "Bearer wrong" } }),
    401,
    "UNAUTHORIZED",
  );
  await assertError(await fixture.fetch("/metrics"), 401, "UNAUTHORIZED");
  await assertError(
    await fixture.fetch("/v1/objects/x", { method: "PUT", body: "x" }),
    401,
    "UNAUTHORIZED",
  );
  assertEquals(await fixture.peer.has("x"), false);
  const ok = await fixture.fetch("/v1/stats", { headers: { authorization: "Bearer s3cret" } });
  assertEquals(ok.status, 200);
  await ok.body?.cancel();
  assertEquals(await json(await fixture.fetch("/healthz")), { status: "ok" });
});

Deno.test("a 401 says how to authenticate: WWW-Authenticate: Bearer", async () => {
  await using fixture = startHttp({ token: "s3cret" });
  for (const headers of [{}, { authorization: "Bearer wrong" }]) {
    const response = await fixture.fetch("/v1/objects", { headers });
    assertEquals(response.headers.get("www-authenticate"), 'Bearer realm="packice"');
    await assertError(response, 401, "UNAUTHORIZED");
  }
  const missing = await fixture.fetch("/v1/objects/none", {
    headers: { authorization: "Bearer s3cret" },
  });
  assertEquals(missing.headers.get("www-authenticate"), null);
  await assertError(missing, 404, "NOT_FOUND");
});

Deno.test("a port in use is refused with the address that is taken", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using peer = new MemoryPeer({ capacity: 1 << 20 });
  const error = assertThrows(
    () => serveHttp(peer, { hostname: "127.0.0.1", port: listener.addr.port }),
    Deno.errors.AddrInUse,
  );
  assert(error.message.includes(`127.0.0.1:${listener.addr.port}`), error.message);
});

Deno.test("onRequest hears of every request, refused ones with their error, never a token", async () => {
  const entries: HttpRequestEntry[] = [];
  await using fixture = startHttp({ token: "s3cret", onRequest: (entry) => entries.push(entry) });
  await (await fixture.fetch("/v1/objects")).body?.cancel();
  const auth = { authorization: "Bearer s3cret" };
  await (await fixture.fetch("/v1/objects/x", { method: "PUT", body: "x", headers: auth })).body
    ?.cancel();
  await (await fixture.fetch("/v1/objects/none", { headers: auth })).body?.cancel();
  assertEquals(
    entries.map((entry) => [entry.method, entry.path, entry.status, entry.error?.code]),
    [
      ["GET", "/v1/objects", 401, "UNAUTHORIZED"],
      ["PUT", "/v1/objects/x", 201, undefined],
      ["GET", "/v1/objects/none", 404, "NOT_FOUND"],
    ],
  );
  const lines = entries.map(formatRequest);
  assert(lines[2]!.startsWith("HTTP GET /v1/objects/none 404 "), lines[2]);
  assert(lines.every((line) => !line.includes("s3cret")), lines.join("\n"));
});

Deno.test("serving beyond loopback needs a token", async () => {
  await using peer = new MemoryPeer({ capacity: 1 << 20 });
  const error = assertThrows(
    () => serveHttp(peer, { hostname: "0.0.0.0", port: 0 }),
    InvalidArgumentError,
  );
  assert(error.message.includes("without a token"), error.message);
  assertThrows(() => serveHttp(peer, { port: 0, token: "" }), InvalidArgumentError);
  await using server = serveHttp(peer, { hostname: "0.0.0.0", port: 0, token: "t" });
  assertEquals(server.addr.hostname, "0.0.0.0");
});

Deno.test("bad requests get JSON errors with stable codes, and the server keeps serving", async () => {
  await using fixture = startHttp({ maxBodySize: 1024, maxMetaSize: 100, capacity: 4096 });
  const post = (path: string, body: string) => fixture.fetch(path, { method: "POST", body });
  await assertError(await post("/v1/leases", "{nope"), 400, "PROTOCOL");
  await assertError(await post("/v1/leases", "[1]"), 400, "PROTOCOL");
  await assertError(await post("/v1/leases", '{"access":"DELETE"}'), 400, "INVALID_ARGUMENT");
  await assertError(await post("/v1/leases", '{"access":"READ"}'), 400, "INVALID_ARGUMENT");
  await assertError(
    await post(
      "/v1/leases",
      JSON.stringify({ access: "CREATE", size: 1, meta: { a: "x".repeat(200) } }),
    ),
    413,
    "INVALID_ARGUMENT",
  );
  await assertError(
    await post("/v1/leases", '{"access":"READ","objectId":"no"}'),
    404,
    "NOT_FOUND",
  );
  await assertError(await post("/v1/leases/nope/seal", ""), 404, "UNKNOWN_LEASE");
  await assertError(await post("/v1/leases/nope/renew", ""), 404, "UNKNOWN_LEASE");
  const held = await json(
    await post("/v1/leases", '{"access":"CREATE","objectId":"held","size":1}'),
  );
  const leaseId = (held.lease as { id: string }).id;
  await assertError(
    await post(`/v1/leases/${leaseId}/renew`, '{"ttl":-1}'),
    400,
    "INVALID_ARGUMENT",
  );
  await assertError(await fixture.fetch(`/v1/leases/${leaseId}/blobs/1`), 400, "INVALID_ARGUMENT");
  await assertError(
    await fixture.fetch(`/v1/leases/${leaseId}/blobs/0?offset=-1`, { method: "PATCH", body: "x" }),
    400,
    "INVALID_ARGUMENT",
  );
  assertEquals((await fixture.fetch(`/v1/leases/${leaseId}`, { method: "DELETE" })).status, 204);
  await assertError(await fixture.fetch("/v1/leases/nope/blobs/0"), 404, "UNKNOWN_LEASE");
  await assertError(await fixture.fetch("/v1/objects/missing"), 404, "NOT_FOUND");
  await assertError(await fixture.fetch("/v1/objects/missing/info"), 404, "NOT_FOUND");
  await assertError(
    await fixture.fetch("/v1/objects/missing", { method: "DELETE" }),
    404,
    "NOT_FOUND",
  );
  await assertError(await fixture.fetch("/v1/nowhere"), 404, "NOT_FOUND");
  await assertError(await fixture.fetch("/v1/objects/a%2Fb"), 400, "INVALID_ARGUMENT");
  await assertError(await fixture.fetch("/v1/objects/%zz"), 400, "INVALID_ARGUMENT");

  const wrongMethod = await fixture.fetch("/v1/objects/x", { method: "PATCH", body: "x" });
  assertEquals(wrongMethod.headers.get("allow"), "PUT, GET, HEAD, DELETE");
  await assertError(wrongMethod, 405, "PROTOCOL");
  await assertError(await fixture.fetch("/v1/stats", { method: "DELETE" }), 405, "PROTOCOL");

  const put = (id: string, body: BodyInit, headers: Record<string, string> = {}) =>
    fixture.fetch(`/v1/objects/${id}`, { method: "PUT", body, headers });
  await assertError(await put("big", new Uint8Array(2048)), 413, "PROTOCOL");
  await assertError(
    await put("m", "x", { "packice-meta": `{"a":"${"x".repeat(200)}"}` }),
    413,
    "INVALID_ARGUMENT",
  );
  await assertError(await put("m", "x", { "packice-meta": "{oops" }), 400, "PROTOCOL");
  await assertError(await put("m", "x", { "packice-meta": "[]" }), 400, "INVALID_ARGUMENT");
  await assertError(await put("m", "x", { "packice-ttl": "soon" }), 400, "INVALID_ARGUMENT");
  // A body of no declared length is gathered first, within the same limit.
  await assertError(await put("m", ReadableStream.from([new Uint8Array(2048)])), 413, "PROTOCOL");
  (await put("full", new Uint8Array(1000))).body?.cancel();
  await assertError(
    await post("/v1/leases", '{"access":"CREATE","objectId":"full","size":1}'),
    409,
    "ALREADY_EXISTS",
  );
  await assertError(
    await post("/v1/leases", '{"access":"CREATE","size":100000}'),
    507,
    "CAPACITY_EXCEEDED",
  );
  assertEquals(await fixture.peer.has("m"), false);
  assertEquals((await fixture.peer.stats()).leases, 0);
  assertEquals(await json(await fixture.fetch("/healthz")), { status: "ok" });
  assertEquals((await fixture.fetch("/v1/objects/full")).status, 200);
});

Deno.test("list, stat, stats and DELETE answer as JSON", async () => {
  await using fixture = startHttp();
  await put(fixture, "a", encoder.encode("aa"));
  await put(fixture, "b", encoder.encode("bbb"));
  const list = await (await fixture.fetch("/v1/objects")).json() as Array<{ id: string }>;
  assertEquals(list.map((info) => info.id).sort(), ["a", "b"]);
  assertEquals((await json(await fixture.fetch("/v1/objects/b/info"))).size, 3);
  const stats = await json(await fixture.fetch("/v1/stats"));
  assertEquals([stats.objects, stats.bytes, stats.leases], [2, 5, 0]);
  assertEquals((await fixture.fetch("/v1/objects/a", { method: "DELETE" })).status, 204);
  assertEquals((await json(await fixture.fetch("/v1/stats"))).objects, 1);
});

Deno.test("/metrics counts objects, bytes, leases and requests by route", async () => {
  await using fixture = startHttp();
  const scrape = async () => {
    const response = await fixture.fetch("/metrics");
    assert(response.headers.get("content-type")!.startsWith("text/plain"));
    const values = new Map<string, number>();
    for (const line of (await response.text()).split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const at = line.lastIndexOf(" ");
      values.set(line.slice(0, at), Number(line.slice(at + 1)));
    }
    return values;
  };
  const before = await scrape();
  assertEquals(
    [
      before.get("packice_objects"),
      before.get("packice_bytes"),
      before.get("packice_evictions_total"),
    ],
    [0, 0, 0],
  );
  await put(fixture, "m", new Uint8Array(1000));
  await (await fixture.fetch("/v1/objects/m")).arrayBuffer();
  await (await fixture.fetch("/v1/objects/missing")).body?.cancel();
  const held = await fixture.fetch("/v1/leases", {
    method: "POST",
    body: '{"access":"READ","objectId":"m"}',
  });
  await held.body?.cancel();
  const after = await scrape();
  assertEquals([after.get("packice_objects"), after.get("packice_bytes")], [1, 1000]);
  assertEquals(after.get("packice_leases"), 1);
  assertEquals(
    after.get('packice_http_requests_total{route="PUT /v1/objects/:id",status="201"}'),
    1,
  );
  assertEquals(
    after.get('packice_http_requests_total{route="GET /v1/objects/:id",status="200"}'),
    1,
  );
  assertEquals(
    after.get('packice_http_requests_total{route="GET /v1/objects/:id",status="404"}'),
    1,
  );
  assertEquals(
    after.get('packice_http_request_duration_seconds_count{route="GET /v1/objects/:id"}'),
    2,
  );
  assertEquals(
    after.get(
      'packice_http_request_duration_seconds_bucket{route="GET /v1/objects/:id",le="+Inf"}',
    ),
    2,
  );
  assertEquals(after.get('packice_http_requests_total{route="GET /metrics",status="200"}'), 1);
});

Deno.test("32 concurrent clients put, read and delete without mixing bytes", async () => {
  await using fixture = startHttp();
  await Promise.all(Array.from({ length: 32 }, async (_, client) => {
    for (let round = 0; round < 8; round++) {
      const id = `c${client}-${round}`;
      const bytes = pattern(1024 + client * 997 + round, client + round);
      await put(fixture, id, bytes);
      const response = await fixture.fetch(`/v1/objects/${id}`);
      assertEquals(new Uint8Array(await response.arrayBuffer()), bytes);
      assertEquals((await fixture.fetch(`/v1/objects/${id}`, { method: "DELETE" })).status, 204);
    }
  }));
  const stats = await fixture.peer.stats();
  assertEquals([stats.objects, stats.leases, stats.bytes], [0, 0, 0]);
});

Deno.test("closing the server releases the leases its clients hold", async () => {
  const fixture = startHttp();
  try {
    await put(fixture, "r", encoder.encode("read"));
    for (
      const body of [
        '{"access":"READ","objectId":"r"}',
        '{"access":"CREATE","objectId":"w","size":1}',
      ]
    ) {
      await (await fixture.fetch("/v1/leases", { method: "POST", body })).body?.cancel();
    }
    assertEquals((await fixture.peer.stats()).leases, 2);
    await fixture.server.close();
    await fixture.server.close();
    assertEquals((await fixture.peer.stats()).leases, 0);
    assertEquals(await fixture.peer.has("w"), false);
    await assertRejects(() => fetch(`${fixture.server.url}/healthz`), TypeError);
  } finally {
    await fixture[Symbol.asyncDispose]();
  }
});

Deno.test("the daemon serves HTTP beside its socket with --http, and needs a token off loopback", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = createLogger("error");
    const socket = `${dir}/packice.sock`;
    await using daemon = await startDaemon(
      parseServeArgs(["--socket", socket, "--http", "127.0.0.1:0", "--capacity", "1MiB"]),
      log,
    );
    const url = daemon.addresses.find((address) => address.startsWith("http://"))!;
    assert(/^http:\/\/127\.0\.0\.1:\d+$/.test(url), url);
    // No --token: the daemon made one, only this user can read it, and nothing passes without it.
    assertEquals(daemon.tokenFile, `${socket}.token`);
    assertEquals((await Deno.stat(daemon.tokenFile!)).mode! & 0o777, 0o600);
    const [token, listed] = (await Deno.readTextFile(daemon.tokenFile!)).split("\n");
    assertEquals(listed, url);
    const refused = await fetch(`${url}/v1/objects`);
    assertEquals(refused.status, 401);
    await refused.body?.cancel();
    const response = await fetch(`${url}/v1/objects/d`, {
      method: "PUT",
      body: "daemon",
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals(response.status, 201);
    await response.body?.cancel();
    const status = await fetch(`${url}/v1/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = await status.json();
    assertEquals([body.pid, body.impl, body.stats.objects], [Deno.pid, "mem", 1]);
    assertEquals((await daemon.peer.stat("d")).size, 6);
    await assertRejects(
      () =>
        startDaemon(
          parseServeArgs(["--socket", `${dir}/other.sock`, "--http", "0.0.0.0:0"]),
          log,
        ),
      InvalidArgumentError,
    );
    await daemon.close();
    assertEquals(await exists(`${socket}.token`), false, "the token file goes with the daemon");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a peer's failure answers 500 INTERNAL and is reported to onError", async () => {
  const errors: unknown[] = [];
  await using fixture = startHttp({ onError: (error) => errors.push(error) });
  fixture.peer.list = () => Promise.reject(new Error("disk on fire"));
  fixture.peer.listPage = () => Promise.reject(new Error("disk on fire"));
  const message = await assertError(await fixture.fetch("/v1/objects"), 500, "INTERNAL");
  assert(message.includes("disk on fire"), message);
  assertEquals(errors.length, 1);
});
