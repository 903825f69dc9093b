import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { type Entries, memoryDirectory } from "../helpers/memory_directory.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { ClusterPeer, connect, MemoryPeer, serveHttp } from "../../mod.ts";
import { ProtocolError } from "../../core/errors.ts";
import { RedisDirectory } from "../../p2p/directory/redis.ts";
import type { Holder } from "../../p2p/directory.ts";
import { holderJson, parseHolder } from "../../p2p/directory/wire.ts";
import { startDaemon } from "../../daemon/daemon.ts";
import { createLogger } from "../../daemon/log.ts";
import { parseServeArgs } from "../../daemon/options.ts";
import { readMetric } from "../helpers/metrics.ts";

const TOKEN = "in-process";
const MiB = 1 << 20;

/**
 * A holder `a` with a native GET listener, announced with `piecePort(port)`
 * (its listener's port, or undefined), and a reader `b`, in this process.
 */
function pair(piecePort: (listener: number) => number | undefined) {
  const entries: Entries = new Map();
  const peer = (node: string) =>
    new ClusterPeer({
      home: new MemoryPeer({ capacity: 64 * MiB }),
      replicas: new MemoryPeer({ capacity: 64 * MiB }),
      directory: memoryDirectory(entries),
      node,
      token: TOKEN,
    });
  const a = peer("a");
  const server = serveHttp(a, { port: 0, token: TOKEN, fastGet: { port: 0 } });
  a.address = server.url;
  a.piecePort = piecePort(Number(new URL(server.fastUrl!).port));
  const b = peer("b");
  b.address = "http://127.0.0.1:9";
  return {
    a,
    b,
    entries,
    /** Body bytes a's native listener sent. */
    sentNatively: () => readMetric(server.url, TOKEN, "packice_http_fast_bytes_total"),
    [Symbol.asyncDispose]: async () => {
      await server.close();
      await a.close();
      await b.close();
    },
  };
}

/** Fetches `id` of `size` bytes from a to b, and says how long it took. */
async function fetchAcross(cluster: ReturnType<typeof pair>, size: number, seed: number) {
  await using onA = await connect(cluster.a);
  await using onB = await connect(cluster.b);
  const bytes = pattern(size, seed);
  await onA.put(bytes, { id: `o${seed}` });
  const started = performance.now();
  using handle = await onB.get(`o${seed}`);
  const ms = performance.now() - started;
  assert(sameBytes(handle.bytes, bytes), "the bytes fetched");
  return ms;
}

Deno.test("pieces are asked at the piece port a holder announced, and leave from its native listener", async () => {
  await using cluster = pair((port) => port);
  assertEquals(cluster.entries.size, 0);
  await fetchAcross(cluster, 12 * MiB, 1);
  assertEquals(cluster.entries.get("o1")!.holders.get("a")!.piecePort, cluster.a.piecePort);
  assertEquals(await cluster.sentNatively(), 12 * MiB);
});

Deno.test("a holder that announced no piece port is asked at its address, through Deno.serve", async () => {
  await using cluster = pair(() => undefined);
  await fetchAcross(cluster, 12 * MiB, 2);
  assertEquals(cluster.entries.get("o2")!.holders.get("a")!.piecePort, undefined);
  assertEquals(await cluster.sentNatively(), 0);
});

Deno.test("a piece port that refuses connections: pieces are asked at the address, the holder not blamed", async () => {
  // A port with nothing behind it.
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close();
  await using cluster = pair(() => port);
  await fetchAcross(cluster, 12 * MiB, 3);
  assertEquals(await cluster.sentNatively(), 0);
  assertEquals(cluster.b.counts.cluster_source_failures_total, 0);
  assertEquals(cluster.b.counts.cluster_blocked_total, 0);
  assert(cluster.b.counts.cluster_piece_port_unreachable_total >= 1, "counted");
});

Deno.test("a piece port that accepts and stays silent costs its probation once, not a piece's deadline", async () => {
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  try {
    await using cluster = pair(() => (silent.addr as Deno.NetAddr).port);
    // A 12 MiB run's deadline is 4 s + 4 s per MiB; the probation is 2 s.
    const ms = await fetchAcross(cluster, 12 * MiB, 4);
    assert(ms < 8000, `fetched in ${ms} ms`);
    assertEquals(await cluster.sentNatively(), 0);
    assertEquals(cluster.b.counts.cluster_source_failures_total, 0);
    assert(cluster.b.counts.cluster_piece_port_unreachable_total >= 1, "counted");
  } finally {
    silent.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
  }
});

Deno.test("a holder's piece port goes over the wire as a port and nothing else", () => {
  const holder = { node: "a", address: "http://10.0.0.1:7070", piecePort: 7071 };
  assertEquals(parseHolder(JSON.parse(JSON.stringify(holderJson(holder)))), holder);
  assertEquals(parseHolder({ node: "a", address: "http://10.0.0.1:7070" }).piecePort, undefined);
  for (const piecePort of [0, 65536, "7071", 1.5]) {
    assertThrows(
      () => parseHolder({ node: "a", address: "http://10.0.0.1:7070", piecePort }),
      ProtocolError,
    );
  }
});

Deno.test(
  "RedisDirectory keeps a holder's piece port beside the address it came with",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using one = await RedisDirectory.connect({ url: redis.url, node: "one" });
    const digest = `sha256:${"a".repeat(64)}`;
    const record = { id: "x", size: 5, digest, pieceSize: 4 * MiB, pieceDigests: [digest] };
    await one.announce(record, { node: "one", address: "http://127.0.0.1:7070", piecePort: 7071 });
    await one.announce(record, {
      node: "two",
      address: "http://127.0.0.1:8080",
      pieces: new Uint8Array([0x80]),
      piecePort: 8081,
    });
    const byNode = (holders: readonly Holder[]) =>
      [...holders].sort((p, q) => p.node < q.node ? -1 : 1);
    assertEquals(byNode((await one.lookup("x"))!.holders), [
      { node: "one", address: "http://127.0.0.1:7070", piecePort: 7071 },
      {
        node: "two",
        address: "http://127.0.0.1:8080",
        pieces: new Uint8Array([0x80]),
        piecePort: 8081,
      },
    ]);
    assertEquals(
      byNode((await one.holders("x", digest))!),
      byNode((await one.lookup("x"))!.holders),
    );
    // Its address written without the port (an older daemon under the same node id): no port.
    await redis.command("HSET", "packice:dir:{x}", "@one", "http://127.0.0.1:9090");
    assertEquals(byNode((await one.lookup("x"))!.holders)[0], {
      node: "one",
      address: "http://127.0.0.1:9090",
    });
    // Announced again without one: the field goes; withdrawn: so does any other.
    await one.announce(record, { node: "two", address: "http://127.0.0.1:8080" });
    await one.withdraw("x", "one");
    assertEquals((await redis.command("HKEYS", "packice:dir:{x}") as string[]).sort(), [
      "@two",
      "digest",
      "pieceSize",
      "pieces",
      "size",
    ]);
  },
);

Deno.test("a daemon with --http sends pieces from its native listener by default; --http-fast off sends none", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const [flags, on] of [[[], true], [["--http-fast", "off"], false]] as const) {
      await using daemon = await startDaemon(
        parseServeArgs([
          "--socket",
          `${dir}/packice-${on}.sock`,
          "--http",
          "127.0.0.1:0",
          ...flags,
        ]),
        createLogger("error"),
      );
      const status = await daemon.status();
      assertEquals(status.httpFast !== undefined, on, JSON.stringify(status));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a native listener that cannot start, when optional, leaves the server running without it", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using peer = new MemoryPeer();
  const reasons: Error[] = [];
  await using server = serveHttp(peer, {
    port: 0,
    fastGet: { port: (taken.addr as Deno.NetAddr).port, optional: (error) => reasons.push(error) },
  });
  assertEquals(server.fastUrl, undefined);
  assert(reasons[0] instanceof Deno.errors.AddrInUse, String(reasons[0]));
  const response = await fetch(`${server.url}/healthz`);
  assertEquals(response.status, 200);
  await response.body?.cancel();
});
