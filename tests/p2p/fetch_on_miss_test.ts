import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { clusterDir, pattern, sameBytes, startClusterDaemons, TOKEN } from "../helpers/cluster.ts";
import { startProxy } from "../helpers/proxy.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { createHash } from "node:crypto";
import { bindRecord, connect, NotFoundError } from "../../mod.ts";

Deno.test(
  "an object put on one daemon is read on each other one; the second read is local",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using tmp = await clusterDir();
    const dir = tmp.path;
    await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b", "c"]);
    const [a, b, c] = daemons;
    const bytes = pattern(9 << 20, 1);
    {
      await using client = await connect(a.socket);
      await client.put(bytes, { id: "weights", meta: { "content-type": "model/x" } });
    }
    for (const daemon of [b, c]) {
      await using client = await connect(daemon.socket);
      await assertRejects(() => client.get("weights", { local: true }), NotFoundError);
      {
        using handle = await client.get("weights");
        assert(sameBytes(handle.bytes, bytes), `bytes on ${daemon.node}`);
        assertEquals(handle.meta, { "content-type": "model/x" });
      }
      // Its stat lists its own copy beside the daemon that put it.
      const holders = (await client.stat("weights")).holders?.map((holder) => holder.node);
      assertEquals(holders, ["a", daemon.node]);
      const first = await daemon.metrics();
      assertEquals(first.cluster_fetches_total, 1);
      assertEquals(first.cluster_fetch_bytes_total, bytes.length);
      using again = await client.get("weights");
      assert(sameBytes(again.bytes, bytes));
      const second = await daemon.metrics();
      assertEquals(second.cluster_fetches_total, 1);
      assertEquals(second.cluster_local_hits_total, first.cluster_local_hits_total! + 1);
    }
    // Over HTTP too: put on a, fetched on miss by c for an HTTP client; `local` carried over.
    const small = pattern(100_000, 9);
    {
      await using overHttp = await connect(a.url, { token: TOKEN });
      await overHttp.put(small, { id: "over-http" });
    }
    await using overHttp = await connect(c.url, { token: TOKEN });
    await assertRejects(() => overHttp.get("over-http", { local: true }), NotFoundError);
    using handle = await overHttp.get("over-http");
    assert(sameBytes(handle.bytes, small));
    const bare = await fetch(`${b.url}/v1/objects/over-http?local=1`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assertEquals(bare.status, 404);
    await bare.body?.cancel();
    const fetched = await fetch(`${b.url}/v1/objects/over-http`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert(sameBytes(new Uint8Array(await fetched.arrayBuffer()), small));

    // A daemon that stops cleanly leaves the entries of what it held.
    assertEquals(await redis.command("HEXISTS", "cluster:dir:{weights}", "@b"), 1);
    assertEquals((await b.stop("SIGTERM")).code, 0);
    assertEquals(await redis.command("HEXISTS", "cluster:dir:{weights}", "@b"), 0);
    assertEquals(await redis.command("HEXISTS", "cluster:dir:{weights}", "@c"), 1);
  },
);

/** The directory entry key of `id` in the test namespace. */
const entry = (id: string) => `cluster:dir:{${id}}`;

Deno.test(
  "a holder that corrupts bytes is caught: nothing wrong is sealed, another holder is used",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using tmp = await clusterDir();
    const dir = tmp.path;
    await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b"]);
    const [a, b] = daemons;
    const bytes = pattern(9 << 20, 2);
    {
      await using client = await connect(a.socket);
      await client.put(bytes, { id: "x" });
    }
    // Its pieces are checked under BLAKE3, as new records name them.
    const pieces = await redis.command("HGET", entry("x"), "pieces") as string;
    assert(pieces.startsWith("blake3:"), pieces.slice(0, 20));
    await using liar = startProxy(a.url, { corrupt: true });
    await redis.command("HDEL", entry("x"), "@a");
    await redis.command("HSET", entry("x"), "@liar", liar.url);
    await using client = await connect(b.socket);

    // The liar alone: a typed miss, and nothing sealed.
    await assertRejects(() => client.get("x"), NotFoundError, "bytes hash to blake3:");
    await assertRejects(() => client.get("x", { local: true }), NotFoundError);
    const caught = await b.metrics();
    assert(caught.cluster_verify_failures_total! >= 1);
    assertEquals(caught.cluster_blocked_total, 1);
    assertEquals(caught.cluster_fetches_total, 0);

    // Blocked for 30 s: the liar alone is not asked again, and says so.
    const asked = liar.requests.length;
    await assertRejects(() => client.get("x"), NotFoundError, "on the blocklist");
    // The liar and the honest holder: the liar is still skipped, the right bytes come.
    await redis.command("HSET", entry("x"), "@a", a.url);
    using handle = await client.get("x");
    assert(sameBytes(handle.bytes, bytes));
    assertEquals(liar.requests.length, asked);
    const after = await b.metrics();
    assertEquals(after.cluster_fetches_total, 1);
  },
);

Deno.test(
  "holders answering 500 or a short body are skipped, not withdrawn; another one is used",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using tmp = await clusterDir();
    const dir = tmp.path;
    await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b"]);
    const [a, b] = daemons;
    const bytes = pattern(6 << 20, 8);
    {
      await using client = await connect(a.socket);
      await client.put(bytes, { id: "y" });
    }
    await using failing = startProxy(a.url, { rangeStatus: 500 });
    await using short = startProxy(a.url, { shortBy: 1000 });
    await redis.command("HDEL", entry("y"), "@a", "^a");
    await redis.command("HSET", entry("y"), "@failing", failing.url, "@short", short.url);
    await using client = await connect(b.socket);
    const error = await assertRejects(() => client.get("y"), NotFoundError);
    assert(error.message.includes("answered 500"), error.message);
    assert(error.message.includes("cut off"), error.message);
    await assertRejects(() => client.get("y", { local: true }), NotFoundError);
    // Both answer a health check: they stay listed (beside size, digests, binding).
    assertEquals(await redis.command("HLEN", entry("y")), 7);
    const failed = await b.metrics();
    assert(failed.cluster_source_failures_total! >= 2);
    assert(failed.cluster_misses_total! >= 1);

    await redis.command("HSET", entry("y"), "@a", a.url);
    using handle = await client.get("y");
    assert(sameBytes(handle.bytes, bytes));
  },
);

Deno.test(
  "a holder killed mid-transfer is withdrawn; another holder sends only the pieces still missing",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using tmp = await clusterDir();
    const dir = tmp.path;
    await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b", "c"]);
    const [a, b, c] = daemons;
    const bytes = pattern(24 << 20, 3);
    {
      await using client = await connect(a.socket);
      await client.put(bytes, { id: "big" });
    }
    {
      await using client = await connect(c.socket);
      using handle = await client.get("big");
      assert(sameBytes(handle.bytes, bytes));
    }
    // Only a behind a slow proxy is listed; once it has sent 14 MiB (two
    // pieces of 4 MiB at least), c comes back and a is killed.
    let killed = false;
    let dying: Promise<unknown> | undefined;
    await using throughC = startProxy(c.url);
    await using slow = startProxy(a.url, {
      rate: 16 << 20,
      // Nothing more passes, on any response, until a is dead; then they end short.
      onBytes: async (sent) => {
        if (sent >= 14 << 20 && dying === undefined) {
          killed = true;
          dying = redis.command("HSET", entry("big"), "@c", throughC.url)
            .then(() => a.stop("SIGKILL"));
        }
        await dying;
        return killed;
      },
    });
    await redis.command("HDEL", entry("big"), "@c");
    await redis.command("HSET", entry("big"), "@a", slow.url);
    await using client = await connect(b.socket);
    using handle = await client.get("big");
    assert(killed);
    assertEquals((await a.stop()).signal, "SIGKILL");
    assert(sameBytes(handle.bytes, bytes));
    assertEquals((await b.metrics()).cluster_fetches_total, 1);
    const resumed = throughC.requests.filter((request) => request.includes("bytes="));
    assert(resumed.length > 0 && resumed.length < 6, throughC.requests.join("\n"));
    // The dead holder is withdrawn once it fails a health check too.
    await eventually(
      async () => await redis.command("HEXISTS", entry("big"), "@a") === 0,
      "a is withdrawn",
      { timeout: 15_000 },
    );
    assertEquals((await b.metrics()).cluster_withdrawn_total, 1);
  },
);

Deno.test(
  "delete on any daemon removes an object cluster-wide; a new put under its id is served new",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using tmp = await clusterDir();
    const dir = tmp.path;
    await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b", "c"]);
    const [a, b, c] = daemons;
    await using onA = await connect(a.socket);
    await using onB = await connect(b.socket);
    await using onC = await connect(c.socket);
    const old = pattern(5 << 20, 4);
    await onA.put(old, { id: "doc" });
    for (const client of [onB, onC]) {
      using handle = await client.get("doc");
      assert(sameBytes(handle.bytes, old));
    }
    // A reader on a keeps its bytes through the delete.
    using reading = await onA.get("doc");
    await onC.delete("doc");
    for (const client of [onA, onB, onC]) {
      await assertRejects(() => client.get("doc"), NotFoundError);
    }
    assert(sameBytes(reading.bytes, old));

    const fresh = pattern(6 << 20, 5);
    await onB.put(fresh, { id: "doc" });
    for (const client of [onA, onB, onC]) {
      using handle = await client.get("doc");
      assert(sameBytes(handle.bytes, fresh));
    }
  },
);

Deno.test(
  "concurrent gets of one missing object on a daemon start one transfer",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using tmp = await clusterDir();
    const dir = tmp.path;
    await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b"]);
    const [a, b] = daemons;
    const bytes = pattern(10 << 20, 6);
    {
      await using client = await connect(a.socket);
      await client.put(bytes, { id: "hot" });
    }
    await using counting = startProxy(a.url, { rate: 64 << 20 });
    await redis.command("HSET", entry("hot"), "@a", counting.url);
    const clients = await Promise.all(Array.from({ length: 8 }, () => connect(b.socket)));
    try {
      const handles = await Promise.all(clients.map((client) => client.get("hot")));
      for (const handle of handles) {
        assert(sameBytes(handle.bytes, bytes));
        handle.close();
      }
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
    const ranges = counting.requests.filter((request) => request.includes("bytes="));
    assertEquals(ranges.length, 3, counting.requests.join("\n"));
    assertEquals((await b.metrics()).cluster_fetches_total, 1);
  },
);

Deno.test(
  "forged directory entries end in a typed error, nothing sealed, the daemon alive",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using tmp = await clusterDir();
    const dir = tmp.path;
    await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b"]);
    const [a, b] = daemons;
    await using onA = await connect(a.socket);
    await using onB = await connect(b.socket);
    const zero = `sha256:${"0".repeat(64)}`;

    // An object no one holds, at an unreachable address and at a daemon without it.
    await redis.command(
      "HSET",
      entry("ghost"),
      "size",
      "100",
      "digest",
      zero,
      "pieceSize",
      String(4 << 20),
      "pieces",
      "0".repeat(64),
      "@gone",
      "http://127.0.0.1:9",
      "@a",
      a.url,
    );
    await assertRejects(() => onB.get("ghost"), NotFoundError, "no holder could send it");
    // Both withdrawn: one does not answer, the other does not hold the object.
    await eventually(
      async () => await redis.command("EXISTS", entry("ghost")) === 0,
      "the forged holders are withdrawn, and the entry with them",
      { timeout: 15_000 },
    );

    // A real object under a wrong size, then under a wrong digest.
    const bytes = pattern(5 << 20, 7);
    await onA.put(bytes, { id: "real" });
    const digest = await redis.command("HGET", entry("real"), "digest") as string;
    await redis.command("HSET", entry("real"), "size", String(bytes.length + (4 << 20)));
    await assertRejects(() => onB.get("real"), NotFoundError, "Invalid directory record");
    // The digest altered: the binding no longer matches, nothing is fetched.
    await redis.command("HSET", entry("real"), "size", String(bytes.length), "digest", zero);
    await assertRejects(() => onB.get("real"), NotFoundError, "binding does not match");
    // Without a binding (as an older daemon records it), the whole is hashed and fails.
    const binding = await redis.command("HGET", entry("real"), "binding") as string;
    await redis.command("HDEL", entry("real"), "binding");
    await assertRejects(() => onB.get("real"), NotFoundError, "the whole is not");
    await assertRejects(() => onB.get("real", { local: true }), NotFoundError);
    const metrics = await b.metrics();
    assert(metrics.cluster_verify_failures_total! >= 1);
    assertEquals(metrics.cluster_fetches_total, 0);

    // Put right again but left without a binding, as an older daemon records
    // it: the same daemon fetches it, hashing the whole.
    await redis.command("HSET", entry("real"), "digest", digest);
    assert(binding.startsWith("hmac-sha256:"), binding);
    using handle = await onB.get("real");
    assert(sameBytes(handle.bytes, bytes));
  },
);

Deno.test(
  "a record whose piece digests are sha256:, as older daemons made them, still fetches, and a liar is still caught",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using tmp = await clusterDir();
    const dir = tmp.path;
    await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b"]);
    const [a, b] = daemons;
    const bytes = pattern(9 << 20, 3);
    {
      await using client = await connect(a.socket);
      await client.put(bytes, { id: "old" });
    }
    // The entry as an older daemon wrote it: bare SHA-256 hex per piece, bound by the token.
    const [size, digest, pieceSize] = await redis.command(
      "HMGET",
      entry("old"),
      "size",
      "digest",
      "pieceSize",
    ) as string[];
    const piece = Number(pieceSize);
    const pieceDigests = [0, 1, 2].map((i) =>
      `sha256:${
        createHash("sha256").update(bytes.subarray(i * piece, (i + 1) * piece)).digest("hex")
      }`
    );
    const record = {
      id: "old",
      size: Number(size),
      digest: digest!,
      pieceSize: piece,
      pieceDigests,
    };
    await redis.command(
      "HSET",
      entry("old"),
      "pieces",
      pieceDigests.map((text) => text.slice("sha256:".length)).join(""),
      "binding",
      bindRecord(record, TOKEN),
    );
    await using liar = startProxy(a.url, { corrupt: true });
    await redis.command("HDEL", entry("old"), "@a", "^a");
    await redis.command("HSET", entry("old"), "@liar", liar.url);
    await using client = await connect(b.socket);
    await assertRejects(() => client.get("old"), NotFoundError, "bytes hash to sha256:");
    await redis.command("HDEL", entry("old"), "@liar");
    await redis.command("HSET", entry("old"), "@a", a.url);
    using handle = await client.get("old");
    assert(sameBytes(handle.bytes, bytes));
    assertEquals((await b.metrics()).cluster_fetches_total, 1);
  },
);
