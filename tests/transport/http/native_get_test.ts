/**
 * The native GET listener (`fastGet`, `--http-fast`) against real sockets:
 * what C answers itself with sendfile must match the Deno server byte for
 * byte and header for header, and everything else must reach the Deno
 * server with its connection.
 */
import { InvalidArgumentError, ManualClock, MemoryPeer, serveHttp } from "../../../mod.ts";
import { startDaemon } from "../../../daemon/daemon.ts";
import { createLogger } from "../../../daemon/log.ts";
import { parseServeArgs } from "../../../daemon/options.ts";
import { type HttpFixture, readRest } from "../../helpers/http_fixture.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";
import { middleRate, sampleWhile } from "../../helpers/steady_rate.ts";
import { check } from "../../../native/errno.ts";
import { Linux } from "../../../native/ffi.ts";
import { loadNative } from "../../../native/load.ts";
import { NativeGet } from "../../../transport/http/native_get.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function pattern(length: number, seed = 0): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 12)) & 255;
  return bytes;
}

interface FastFixture extends HttpFixture {
  /** The native listener's base URL. */
  readonly fast: string;
}

/** A memory peer in cache mode on a manual clock behind a server with a native GET listener. */
function startFast(
  options: {
    token?: string;
    capacity?: number;
    maxUploadRate?: number;
    maxUploads?: number;
    repeatWindowMs?: number;
  } = {},
): FastFixture {
  const { capacity = 128 << 20, ...rest } = options;
  const clock = new ManualClock(1_000_000);
  const peer = new MemoryPeer({ capacity, clock, sweepInterval: 0, mode: "cache" });
  const server = serveHttp(peer, { port: 0, fastGet: { port: 0 }, ...rest });
  return {
    peer,
    server,
    clock,
    fast: server.fastUrl!,
    fetch: (path, init) => fetch(`${server.url}${path}`, init),
    [Symbol.asyncDispose]: async () => {
      await server.close();
      await peer.close();
    },
  };
}

async function put(
  fixture: HttpFixture,
  id: string,
  bytes: Uint8Array<ArrayBuffer>,
  meta?: unknown,
) {
  const response = await fixture.fetch(`/v1/objects/${id}`, {
    method: "PUT",
    body: bytes,
    headers: meta === undefined ? {} : { "packice-meta": JSON.stringify(meta) },
  });
  assertEquals(response.status, 201, await response.text());
}

/** GETs `path` of the listener, as the Deno server's GET of it once offered. */
async function offered(
  fixture: FastFixture,
  path: string,
  headers: HeadersInit = {},
): Promise<void> {
  const response = await fetch(`${fixture.fast}${path}`, { headers });
  assertEquals(response.status, 200);
  await response.body?.cancel();
}

/** The listener's counts, as `/metrics` shows them. */
async function counts(
  fixture: HttpFixture,
  headers: HeadersInit = {},
): Promise<Record<string, number>> {
  const text = await (await fixture.fetch("/metrics", { headers })).text();
  const out: Record<string, number> = {};
  for (const match of text.matchAll(/^packice_http_fast_(\w+)_total (\d+)$/gm)) {
    out[match[1]!] = Number(match[2]);
  }
  return out;
}

/** Sends `text` on a new connection to `url`'s port and reads until the server closes. */
async function raw(url: string, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(url).port) });
  await conn.write(encoder.encode(text));
  let received = "";
  const buffer = new Uint8Array(65536);
  for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
    received += decoder.decode(buffer.subarray(0, n));
  }
  conn.close();
  return received;
}

/** The parts of a response the two servers must agree on. */
async function shape(response: Response) {
  const body = new Uint8Array(await response.arrayBuffer());
  const headers: Record<string, string | null> = {};
  for (
    const name of [
      "content-type",
      "content-length",
      "content-range",
      "etag",
      "accept-ranges",
      "packice-meta",
    ]
  ) {
    headers[name] = response.headers.get(name);
  }
  return { status: response.status, headers, body };
}

Deno.test("the native listener answers GET and HEAD of an offered object as the Deno server does", async () => {
  await using fixture = startFast();
  const bytes = pattern(3 << 20);
  await put(fixture, "obj", bytes, { "content-type": "text/x-test", n: 1 });
  await offered(fixture, "/v1/objects/obj");
  assertEquals(await counts(fixture), {
    served: 0,
    relayed: 1,
    bytes: 0,
    offers_refused: 0,
    relay_served: 0,
  });
  const ours = await shape(await fetch(`${fixture.fast}/v1/objects/obj`));
  const theirs = await shape(await fixture.fetch("/v1/objects/obj"));
  assertEquals(ours.headers, theirs.headers);
  assertEquals(ours.status, 200);
  assertEquals(ours.headers["content-type"], "text/x-test");
  assert(ours.body.every((byte, i) => byte === bytes[i]) && ours.body.length === bytes.length);
  const head = await fetch(`${fixture.fast}/v1/objects/obj`, { method: "HEAD" });
  assertEquals((await shape(head)).headers, theirs.headers);
  assert(head.headers.get("date") !== null);
  assertEquals(await counts(fixture), {
    served: 2,
    relayed: 1,
    bytes: 3 << 20,
    offers_refused: 0,
    relay_served: 0,
  });
});

Deno.test("the native listener answers one Range with 206 as the Deno server, and hands odd ones over", async () => {
  await using fixture = startFast();
  const size = 1 << 20;
  await put(fixture, "obj", pattern(size));
  await offered(fixture, "/v1/objects/obj");
  const ranges = [
    "bytes=0-0",
    "bytes=100-",
    "bytes=-10",
    `bytes=-${size + 5}`,
    "bytes=5-999999999",
    `bytes=${size - 1}-${size - 1}`,
    // Handed over: unsatisfiable, malformed, several ranges, another unit.
    `bytes=${size}-`,
    "bytes=9-3",
    "bytes=-0",
    "bytes=0-1,5-6",
    "items=0-1",
  ];
  for (const range of ranges) {
    for (const method of ["GET", "HEAD"]) {
      const init = { method, headers: { range } };
      const ours = await shape(await fetch(`${fixture.fast}/v1/objects/obj`, init));
      const theirs = await shape(await fixture.fetch("/v1/objects/obj", init));
      assertEquals(ours, theirs, `${method} ${range}`);
    }
  }
  const { served, relayed } = await counts(fixture);
  // Six GETs and every HEAD here (a HEAD has no range); the offer and five GETs relayed.
  assertEquals({ served, relayed }, { served: 6 + ranges.length, relayed: 6 });
});

Deno.test("on the native listener, refusals and other routes are the Deno server's own answers", async () => {
  await using fixture = startFast({ token: "s3cret" });
  const auth = { authorization: "Bearer s3cret" };
  await fixture.fetch("/v1/objects/obj", { method: "PUT", body: pattern(1000), headers: auth })
    .then((response) => response.body?.cancel());
  await (await fetch(`${fixture.fast}/v1/objects/obj`, { headers: auth })).body?.cancel();
  for (
    const [path, headers] of [
      ["/v1/objects/obj", {}],
      ["/v1/objects/obj", { authorization: "Bearer wrong" }],
      ["/v1/objects/obj", { authorization: "Basic czNjcmV0" }],
      ["/v1/objects/obj", { authorization: "Bearer s3cret extra" }],
      ["/v1/objects/nope", auth],
      ["/v1/objects/obj?local=1", auth],
      ["/v1/objects/obj/info", auth],
      ["/healthz", {}],
    ] as Array<[string, Record<string, string>]>
  ) {
    const ours = await fetch(`${fixture.fast}${path}`, { headers });
    const theirs = await fixture.fetch(path, { headers });
    assertEquals(ours.status, theirs.status, path);
    assertEquals(await ours.text(), await theirs.text(), path);
  }
  // Upper- and lower-case scheme and spaces around the token, as the Deno server takes them.
  for (const authorization of ["bearer s3cret", "BEARER   s3cret  "]) {
    const response = await fetch(`${fixture.fast}/v1/objects/obj`, { headers: { authorization } });
    assertEquals(response.status, 200);
    await response.body?.cancel();
  }
  // Two Authorization headers: the Deno server refuses them joined; so must the listener.
  const twice = "GET /v1/objects/obj HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n" +
    "Authorization: Bearer s3cret\r\nConnection: close\r\n\r\n";
  const ourTwice = await raw(fixture.fast, twice);
  assert(ourTwice.startsWith("HTTP/1.1 401"), ourTwice);
  assert((await raw(fixture.server.url, twice)).startsWith("HTTP/1.1 401"));
  // An upload through the listener reaches the Deno server, body and all.
  const upload = await fetch(`${fixture.fast}/v1/objects/up`, {
    method: "PUT",
    body: pattern(300_000, 2),
    headers: auth,
  });
  assertEquals(upload.status, 201, await upload.text());
  assertEquals((await fixture.peer.stat("up")).size, 300_000);
  assertEquals((await counts(fixture, auth)).served, 2);
});

Deno.test("large bodies relayed both ways arrive whole, then the object is served here", async () => {
  await using fixture = startFast();
  const bytes = pattern(9 << 20, 4);
  const upload = await fetch(`${fixture.fast}/v1/objects/big`, { method: "PUT", body: bytes });
  assertEquals(upload.status, 201, await upload.text());
  for (const expected of [{ served: 0, relayed: 2 }, { served: 1, relayed: 2 }]) {
    const response = await fetch(`${fixture.fast}/v1/objects/big`);
    assertEquals(new Uint8Array(await response.arrayBuffer()), bytes);
    const { served, relayed } = await counts(fixture);
    assertEquals({ served, relayed }, expected);
  }
});

Deno.test("a deleted object stops being served at once; a download under way ends whole", async () => {
  await using fixture = startFast();
  const bytes = pattern(16 << 20);
  await put(fixture, "big", bytes);
  await offered(fixture, "/v1/objects/big");
  const response = await fetch(`${fixture.fast}/v1/objects/big`);
  const reader = response.body!.getReader();
  const first = await reader.read();
  assertEquals((await fixture.fetch("/v1/objects/big", { method: "DELETE" })).status, 204);
  const gone = await fetch(`${fixture.fast}/v1/objects/big`);
  assertEquals(gone.status, 404, "a new request is refused by the Deno server");
  await gone.body?.cancel();
  const replaced = pattern(1 << 20, 5);
  await put(fixture, "big", replaced);
  const fresh = await shape(await fetch(`${fixture.fast}/v1/objects/big`));
  assertEquals(fresh.body, replaced);
  const received = await readRest(reader, first.value!, bytes.length);
  assertEquals(received.length, bytes.length);
  assert(received.every((byte, i) => byte === bytes[i]), "the old bytes arrived whole");
  // Served again natively once offered: the new bytes, not the old.
  assertEquals((await shape(await fetch(`${fixture.fast}/v1/objects/big`))).body, replaced);
});

Deno.test("an object that expires or is evicted stops being served", async () => {
  await using fixture = startFast({ capacity: 10 << 20 });
  const response = await fixture.fetch("/v1/objects/short?ttl=1000", {
    method: "PUT",
    body: pattern(2000),
  });
  assertEquals(response.status, 201, await response.text());
  await offered(fixture, "/v1/objects/short");
  await offered(fixture, "/v1/objects/short");
  fixture.clock.advance(2000);
  await fixture.peer.sweep();
  const gone = await fetch(`${fixture.fast}/v1/objects/short`);
  assertEquals(gone.status, 404);
  await gone.body?.cancel();
  // Cache mode makes room by dropping the least recently read.
  await put(fixture, "o0", pattern(3 << 20));
  await offered(fixture, "/v1/objects/o0");
  for (let i = 1; i < 3; i++) await put(fixture, `o${i}`, pattern(3 << 20, i));
  await put(fixture, "o3", pattern(3 << 20, 3));
  await eventually(async () => !(await fixture.peer.has("o0")), "o0 evicted");
  const evicted = await fetch(`${fixture.fast}/v1/objects/o0`);
  assertEquals(evicted.status, 404);
  await evicted.body?.cancel();
});

Deno.test("pipelined requests on one connection: answers in order, relayed ones among them", async () => {
  await using fixture = startFast();
  await put(fixture, "a", encoder.encode("hello world"));
  await put(fixture, "b", encoder.encode("not offered"));
  await offered(fixture, "/v1/objects/a");
  const ask = (method: string, path: string, extra = "") =>
    `${method} ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
  const text = await raw(
    fixture.fast,
    ask("GET", "/v1/objects/a") + ask("GET", "/v1/objects/a", "Range: bytes=6-\r\n") +
      // Relayed: a HEAD's answer has a length and no body; the next request is answered here.
      ask("HEAD", "/v1/objects/b") + ask("GET", "/v1/objects/b") + ask("GET", "/v1/objects/a") +
      ask("GET", "/v1/objects/missing", "Connection: close\r\n"),
  );
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d+)/g)].map((match) => match[1]);
  assertEquals(statuses, ["200", "206", "200", "200", "200", "404"], text);
  assert(text.includes("\r\n\r\nhello world"), text);
  assert(text.includes("\r\n\r\nworldHTTP/1.1 200"), text);
  assert(text.includes("\r\n\r\nnot offeredHTTP/1.1 200"), text);
  assert(text.endsWith('{"error":{"code":"NOT_FOUND","message":"No object: missing"}}'), text);
  const { served, relayed } = await counts(fixture);
  assertEquals([served, relayed], [3, 4], "a, a, a here; b's HEAD, b and missing relayed");
});

Deno.test("close() stops the native listener, and fastGet is refused where it cannot hold", async () => {
  const fixture = startFast();
  const port = Number(new URL(fixture.fast).port);
  await fixture[Symbol.asyncDispose]();
  await assertRejects(
    () => Deno.connect({ hostname: "127.0.0.1", port }),
    Deno.errors.ConnectionRefused,
  );
  await using peer = new MemoryPeer();
  assert(
    assertThrows(
      () => serveHttp(peer, { port: 0, fastGet: { hostname: "0.0.0.0", port: 0 } }),
      InvalidArgumentError,
    ).message.includes("without a token"),
  );
  assert(
    assertThrows(
      () => parseServeArgs(["--http-fast", "127.0.0.1:0"]),
      InvalidArgumentError,
    ).message.includes("--http-fast needs --http and --impl mem"),
  );
});

Deno.test("what the native listener serves counts as read for a cache's recency", async () => {
  await using fixture = startFast({ capacity: 10 << 20 });
  await put(fixture, "o0", pattern(3 << 20));
  await put(fixture, "o1", pattern(3 << 20, 1));
  await offered(fixture, "/v1/objects/o0");
  await offered(fixture, "/v1/objects/o1");
  // o1 was read last through the peer; o0 is read since, only from the listener.
  const hits = (await fixture.peer.stats()).hits!;
  await offered(fixture, "/v1/objects/o0");
  await eventually(async () => (await fixture.peer.stats()).hits! > hits, "o0 read for recency");
  await put(fixture, "o2", pattern(3 << 20, 2));
  await put(fixture, "o3", pattern(3 << 20, 3));
  assertEquals(await fixture.peer.has("o0"), true, "the object read most recently stays");
  assertEquals(await fixture.peer.has("o1"), false, "the least recently read goes");
});

Deno.test("a daemon with --http-fast serves GET natively with its token and says where in status", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const socket = `${dir}/packice.sock`;
    await using daemon = await startDaemon(
      parseServeArgs(["--socket", socket, "--http", "127.0.0.1:0", "--http-fast", "127.0.0.1:0"]),
      createLogger("error"),
    );
    const status = await daemon.status();
    const fast = status.httpFast!;
    assert(/^http:\/\/127\.0\.0\.1:\d+$/.test(fast), fast);
    const url = daemon.addresses.find((address) => address.startsWith("http://"))!;
    const [token, ...urls] = (await Deno.readTextFile(daemon.tokenFile!)).trim().split("\n");
    assertEquals(urls, [url, fast], "clients of the listener find the token too");
    const headers = { authorization: `Bearer ${token}` };
    const bytes = pattern(1 << 20, 9);
    const put = await fetch(`${url}/v1/objects/x`, { method: "PUT", body: bytes, headers });
    assertEquals(put.status, 201, await put.text());
    const refused = await fetch(`${fast}/v1/objects/x`);
    assertEquals(refused.status, 401);
    await refused.body?.cancel();
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${fast}/v1/objects/x`, { headers });
      assertEquals(new Uint8Array(await response.arrayBuffer()), bytes);
    }
    const metrics = await (await fetch(`${url}/metrics`, { headers })).text();
    assert(/^packice_http_fast_served_total 1$/m.test(metrics), metrics);
    // The daemon's peer is a cluster peer: its removals reach the listener too.
    await (await fetch(`${url}/v1/objects/x`, { method: "DELETE", headers })).body?.cancel();
    const gone = await fetch(`${fast}/v1/objects/x`, { headers });
    assertEquals(gone.status, 404);
    await gone.body?.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("malformed requests on the native listener get what the Deno server answers them", async () => {
  await using fixture = startFast();
  await put(fixture, "obj", pattern(1000));
  await offered(fixture, "/v1/objects/obj");
  const requests = [
    "GARBAGE\r\n\r\n",
    `GET /v1/objects/obj HTTP/1.1\r\nHost: x\r\nX-Big: ${
      "a".repeat(20_000)
    }\r\nConnection: close\r\n\r\n`,
    "GET /v1/objects/obj HTTP/1.7\r\nHost: x\r\n\r\n",
    "GET /v1/objects/%6fbj HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "GET /v1/objects/obj HTTP/1.1\r\nHost: x\r\n folded\r\nConnection: close\r\n\r\n",
    "GET /v1/objects/obj HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
    "DELETE /v1/objects/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  ];
  const statusLine = (text: string) => text.slice(0, text.indexOf("\r\n"));
  for (const request of requests) {
    const ours = await raw(fixture.fast, request);
    const theirs = await raw(fixture.server.url, request);
    assertEquals(statusLine(ours), statusLine(theirs), request.slice(0, 60));
    assertEquals(ours.slice(ours.indexOf("\r\n\r\n")), theirs.slice(theirs.indexOf("\r\n\r\n")));
  }
  assertEquals((await fixture.peer.stat("obj")).size, 1000, "the server keeps serving");
});

Deno.test("a native listener port in use is refused with the address that is taken", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using peer = new MemoryPeer();
  const port = (taken.addr as Deno.NetAddr).port;
  const error = assertThrows(
    () => serveHttp(peer, { port: 0, fastGet: { port } }),
    Deno.errors.AddrInUse,
  );
  assert(error.message.includes(`127.0.0.1:${port}: address in use`), error.message);
});

Deno.test("with upload limits the Deno server admits each GET and the listener sends its bytes by ticket, at the rate", async () => {
  const rate = 20e6;
  await using fixture = startFast({ maxUploadRate: rate, maxUploads: 2, repeatWindowMs: 400 });
  const size = 8 << 20;
  const bytes = pattern(size, 3);
  await put(fixture, "obj", bytes, { "content-type": "text/x-test" });
  const range = { range: "bytes=1048576-5242879" };
  // What a daemon asks (`?local=1`), the bytes and headers the Deno server sends a client.
  const ours = await shape(
    await fetch(`${fixture.fast}/v1/objects/obj?local=1`, { headers: range }),
  );
  const theirs = await shape(await fixture.fetch("/v1/objects/obj", { headers: range }));
  assertEquals(ours.status, 206);
  assertEquals(ours.headers, theirs.headers);
  assertEquals(ours.headers["content-range"], `bytes 1048576-5242879/${size}`);
  assertEquals(theirs.body, ours.body);
  assert(ours.body.every((byte, i) => byte === bytes[1048576 + i]) && ours.body.length === 4 << 20);
  // No object is offered: a plain GET passes the upload gate too, and is sent by ticket.
  const whole = await fetch(`${fixture.fast}/v1/objects/obj`);
  assertEquals(whole.status, 200);
  assertEquals(new Uint8Array(await whole.arrayBuffer()).length, size);
  const after = await counts(fixture);
  assertEquals([after.served, after.relayed], [2, 2], "the local range and the GET sent here");
  // The gate's repeat guard holds: the same range asked twice at once by daemons.
  const twice = await Promise.all(
    [0, 1].map(async () => {
      const response = await fetch(`${fixture.fast}/v1/objects/obj?local=1`, {
        headers: { range: "bytes=0-4194303" },
      });
      await response.arrayBuffer();
      return response.status;
    }),
  );
  assertEquals(twice.sort(), [206, 503]);
  // The rate, within 10%: the bytes the listener took from the bucket, over the middle three
  // quarters of a longer body (see steady_rate.ts), so that neither the burst of 50 ms nor the
  // request's handling (which load stretches) counts; taken again when the metrics requests
  // bracketing it were late.
  const long = pattern(24 << 20, 4);
  await put(fixture, "long", long);
  const uploadedNow = async () => {
    const text = await (await fixture.fetch("/metrics")).text();
    return Number(/^packice_http_upload_bytes_total (\S+)$/m.exec(text)?.[1]);
  };
  let measured: number | undefined;
  let sent = 0;
  for (let attempt = 0; attempt < 3 && measured === undefined; attempt++) {
    // The bucket full again, and the range's repeat window over.
    await new Promise((wake) => setTimeout(wake, 500));
    const reading = (async () => {
      const timed = await fetch(`${fixture.fast}/v1/objects/long?local=1`, {
        headers: { range: `bytes=0-${long.length - 1}` },
      });
      assertEquals((await timed.arrayBuffer()).byteLength, long.length);
    })();
    const { rate: taken, precise } = middleRate(
      await sampleWhile(uploadedNow, reading),
      long.length,
    );
    sent++;
    if (precise) measured = taken;
  }
  assert(measured !== undefined, "no precise measure in 3");
  assert(Math.abs(measured / rate - 1) <= 0.1, `${(measured / 1e6).toFixed(1)} MB/s`);
  const metrics = await (await fixture.fetch("/metrics")).text();
  const uploaded = Number(/^packice_http_upload_bytes_total (\S+)$/m.exec(metrics)?.[1]);
  assertEquals(
    uploaded,
    (4 << 20) * 2 + size + (4 << 20) + sent * long.length,
    "every body took from one bucket",
  );
});

Deno.test("a range sent by ticket from a memfd still written leaves it free to take every seal", async () => {
  // A relay's object lands in a writable memfd and is sealed once its last piece is in,
  // while the listener keeps its mapping of the memfd for the next body.
  const { symbols } = loadNative()!;
  const size = 1 << 20;
  const bytes = pattern(size, 9);
  const fd = check(
    symbols.pk_memfd_create(encoder.encode("landing\0"), Linux.MFD_ALLOW_SEALING),
    "memfd_create",
  );
  await using peer = new MemoryPeer({ capacity: 16 << 20 });
  const stop = new AbortController();
  const sent: Promise<boolean>[] = [];
  let nativeGet: NativeGet | undefined;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: stop.signal, onListen() {} },
    (request) => {
      assert(nativeGet!.handedOver(request));
      const ticket = nativeGet!.ticket(fd, size, { start: 0, end: size }, false, {
        "content-type": "application/octet-stream",
      })!;
      sent.push(ticket.done);
      return new Response(null, { headers: ticket.headers });
    },
  );
  try {
    check(symbols.pk_ftruncate(fd, BigInt(size)), "ftruncate");
    assertEquals(Number(symbols.pk_pwrite_all(fd, bytes, BigInt(size), 0n)), size);
    nativeGet = new NativeGet(loadNative()!, peer, {
      hostname: "127.0.0.1",
      port: 0,
      upstream: server.addr,
      token: undefined,
      tickets: true,
    });
    const response = await fetch(`${nativeGet.url}/v1/objects/landing`);
    assertEquals(new Uint8Array(await response.arrayBuffer()), bytes);
    assertEquals(await Promise.all(sent), [true]);
    assertEquals(symbols.pk_add_seals(fd, Linux.F_SEAL_WRITE), 0, "F_SEAL_WRITE at once");
  } finally {
    await nativeGet?.close();
    stop.abort();
    await server.finished;
    symbols.pk_close(fd);
  }
});
