/**
 * Pieces pulled from another daemon outside a transfer (a follower of an
 * origin download, and any request through `fetch`) are asked at the
 * holder's piece port as a transfer's are: the native listener sends them,
 * and a port that does not answer sends the pull to the address, by the
 * rule of `p2p/swarm/piece_ports.ts`.
 */
import { connect, MemoryPeer, serveHttp } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemons } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { eventually } from "../helpers/eventually.ts";
import { pieceRecord } from "../helpers/piece_record.ts";
import { startCluster, TOKEN as CLUSTER_TOKEN } from "./cluster_daemons.ts";
import { startCountingOrigin } from "./counting_origin.ts";
import { Assembly } from "../../p2p/origin/assembly.ts";
import { originCounts } from "../../p2p/origin/origin_counts.ts";
import { originId } from "../../p2p/origin/origin_id.ts";
import { askJson, parseProgress, type Progress } from "../../p2p/origin/progress.ts";
import { SPOOL_PIECE } from "../../p2p/origin/spool.ts";
import { CLUSTER_PREFIX } from "../../p2p/cluster_transport.ts";
import { pullPieces } from "../../p2p/origin/piece_pull.ts";
import { requestPieces } from "../../p2p/swarm/piece_request.ts";
import { readMetric } from "../helpers/metrics.ts";

const MiB = 1 << 20;
const TOKEN = "origin-piece-port";

/** Reads `url` through the daemon's socket; checks the body. */
async function fetchChecked(
  daemon: { node: string; socket: string },
  url: string,
  expected: Uint8Array,
) {
  await using client = await connect(daemon.socket);
  const response = await client.fetch(url);
  const body = new Uint8Array(await response.arrayBuffer());
  assertEquals(response.status, 200);
  assert(sameBytes(body, expected), `the body through ${daemon.node}`);
}

/**
 * a fetches the origin's `body`, and b the same URL once a's download began;
 * checks both bodies and that the origin was asked once.
 */
async function leadAndFollow(
  a: { node: string; socket: string },
  b: { node: string; socket: string },
  origin: { url: string; readonly sent: number; readonly requests: readonly unknown[] },
  body: Uint8Array,
) {
  const leading = fetchChecked(a, origin.url, body);
  await eventually(() => origin.sent >= 2 * MiB, "a's download began", {
    timeout: 10_000,
    interval: 5,
  });
  await fetchChecked(b, origin.url, body);
  await leading;
  assertEquals(origin.requests.length, 1);
}

/**
 * a downloads `body` from a slow origin (`aFlags` its own), b fetches the same URL
 * meanwhile and follows it: every byte b has it pulled from a.
 */
async function follow(aFlags: readonly string[], seed: number, chunked = false) {
  const body = pattern(24 * MiB, seed);
  await using origin = startCountingOrigin({ body, rate: 16e6, chunked });
  await using cluster = await startCluster(["a"], { extra: aFlags });
  const a = cluster.daemons[0]!;
  const b = await cluster.add("b", ["--http-fast", "127.0.0.1:0"]);
  await leadAndFollow(a, b, origin, body);
  assertEquals(await b.metric("packice_origin_downstream_total"), 1);
  assertEquals(await b.metric("packice_origin_peer_bytes_total"), body.length);
  // No listener, no line.
  const fast = await a.metric("packice_http_fast_bytes_total").catch(() => 0);
  return { a, b, size: body.length, fast };
}

Deno.test("a follower of an origin download pulls its pieces at the downloader's piece port, sent by its native listener", async () => {
  const { size, fast } = await follow([], 41);
  // Every piece b pulled left a's listener by ticket, from the memfd it lands in.
  assertEquals(fast, size);
});

Deno.test("a follower of a chunked origin download pulls its spool pieces at the downloader's piece port too", async () => {
  // No length: b pulls spool pieces while a spools the body, then the rest as pieces of the
  // object. Every one left a's listener, sent from a's spool file or the object's memfd.
  const { size, fast } = await follow([], 46, true);
  assertEquals(fast, size);
});

Deno.test("a follower of a downloader without a piece port (--http-fast off) pulls at its address", async () => {
  const { fast } = await follow(["--http-fast", "off"], 42);
  assertEquals(fast, 0);
});

Deno.test(
  "with --redis, whose claims keep no piece port, a follower learns the downloader's from its progress",
  redisTestOptions,
  async () => {
    const body = pattern(16 * MiB, 45);
    await using origin = startCountingOrigin({ body, rate: 16e6 });
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-origin-port-" });
    try {
      await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b"], "origin");
      const [a, b] = daemons;
      await leadAndFollow(a, b, origin, body);
      assertEquals((await b.metrics()).origin_peer_bytes_total, body.length);
      assertEquals((await a.metrics()).http_fast_bytes_total, body.length);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("a spool range sent at the piece port while the body's length is unknown gives its total as *", async () => {
  const body = pattern(12 * MiB, 47);
  // The origin holds its answer after 6 MiB: a spools one whole piece, its length unknown.
  await using origin = startCountingOrigin({ body, chunked: true, pauseAt: 6 * MiB });
  await using cluster = await startCluster(["a"]);
  const a = cluster.daemons[0]!;
  const leading = fetchChecked(a, origin.url, body).catch((error) => error);
  await origin.paused;
  const id = originId(origin.url);
  const headers = { authorization: `Bearer ${CLUSTER_TOKEN}` };
  let progress: Progress | undefined;
  await eventually(async () => {
    const response = await fetch(`${a.url}${CLUSTER_PREFIX}/origin/progress`, {
      method: "POST",
      headers,
      body: JSON.stringify(askJson(id, { node: "asker", address: "http://127.0.0.1:9" })),
    });
    progress = parseProgress(await response.json());
    return (progress.spoolDigests?.[0] ?? "") !== "";
  }, "a spooled its first piece");
  // At the piece port the listener sends it from the spool file; at the address, the Deno server.
  for (const [at, fast] of [[`http://127.0.0.1:${progress!.piecePort}`, SPOOL_PIECE], [a.url, 0]]) {
    const before = await a.metric("packice_http_fast_bytes_total");
    const response = await fetch(`${at}${CLUSTER_PREFIX}/origin/spool/${id}`, {
      headers: { ...headers, range: `bytes=0-${SPOOL_PIECE - 1}` },
    });
    const bytes = new Uint8Array(await response.arrayBuffer());
    assertEquals(response.status, 206);
    assertEquals(response.headers.get("content-range"), `bytes 0-${SPOOL_PIECE - 1}/*`);
    assert(sameBytes(bytes, body.subarray(0, SPOOL_PIECE)), "the spool piece");
    assertEquals(await a.metric("packice_http_fast_bytes_total") - before, fast);
  }
  await a.signal("SIGKILL");
  assert((await leading) instanceof Error, "a's client saw its daemon go");
});

/**
 * A holder of `bytes` (object `id`) behind a server with a native GET
 * listener; `sent()` says the body bytes that listener sent.
 */
async function holderOf(id: string, bytes: Uint8Array) {
  const peer = new MemoryPeer({ capacity: 64 * MiB });
  {
    await using client = await connect(peer);
    await client.put(bytes, { id });
  }
  const server = serveHttp(peer, { port: 0, token: TOKEN, fastGet: { port: 0 } });
  return {
    url: server.url,
    port: Number(new URL(server.fastUrl!).port),
    sent: () => readMetric(server.url, TOKEN, "packice_http_fast_bytes_total"),
    [Symbol.asyncDispose]: async () => {
      await server.close();
      await peer.close();
    },
  };
}

/** A loopback port with nothing behind it. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("an origin pull asks each source at its piece port; one that refuses sends it to the address", async () => {
  const bytes = pattern(10 * MiB, 43);
  await using holder = await holderOf("pulled", bytes);
  for (const [port, native] of [[holder.port, true], [closedPort(), false]] as const) {
    const before = await holder.sent();
    const assembly = new Assembly("pulled", bytes.length, new Uint8Array(bytes.length));
    pieceRecord("pulled", bytes, assembly.pieceSize).pieceDigests
      .forEach((digest, piece) => assembly.digests[piece] = digest);
    const counts = originCounts();
    const source = {
      node: "h",
      address: holder.url,
      piecePort: port,
      pieces: new Uint8Array([0xff]),
    };
    try {
      await pullPieces(assembly, () => [source], {
        token: TOKEN,
        signal: AbortSignal.timeout(20_000),
        counts,
      });
    } finally {
      // Its whole hash reads the view on the thread pool: over before the runtime may free it.
      await assembly.settled();
    }
    assert(assembly.complete && sameBytes(assembly.view, bytes), "every piece, verified");
    assertEquals(counts.origin_peer_bytes_total, bytes.length);
    assertEquals(await holder.sent() - before, native ? bytes.length : 0);
    assertEquals(counts.origin_piece_port_unreachable_total > 0, !native);
  }
});

Deno.test("a piece request through fetch goes to the piece port too, and to the address when the port refuses", async () => {
  const bytes = pattern(3 * MiB, 44);
  const record = pieceRecord("fetched", bytes, MiB);
  await using holder = await holderOf("fetched", bytes);
  using client = Deno.createHttpClient({});
  for (const [port, native] of [[holder.port, true], [closedPort(), false]] as const) {
    const before = await holder.sent();
    const target = new Uint8Array(bytes.length);
    let unreachable = 0;
    const landed = await requestPieces({
      record,
      piece: 0,
      count: 3,
      holder: { node: "h", address: holder.url, piecePort: port },
      target,
      at: 0,
      client,
      token: TOKEN,
      signal: new AbortController().signal,
      piecePortUnreachable: () => unreachable++,
      landed: () => {},
    });
    assertEquals(landed, 3);
    assert(sameBytes(target, bytes), "the bytes");
    assertEquals(await holder.sent() - before, native ? bytes.length : 0);
    assertEquals(unreachable, native ? 0 : 1);
  }
});
