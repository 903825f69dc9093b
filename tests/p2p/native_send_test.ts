/**
 * Daemons with `--http-fast` and upload limits: other daemons ask their
 * native listener for pieces (the piece port they announce), the Deno
 * server admits each ask, and the listener sends the bytes by ticket, from
 * the sealed object or from the verified pieces of one still arriving.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemon, TOKEN } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { connect } from "../../mod.ts";

const FAST = ["--http-fast", "127.0.0.1:0"];

Deno.test(
  "a daemon with --http-fast sends pieces from its native listener within 10% of its upload rate",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-native-send-" });
    try {
      const rate = 25e6;
      await using a = await startClusterDaemon(redis.url, dir, "a", "cluster", [
        ...FAST,
        "--max-upload-rate",
        "25MB",
        "--max-uploads",
        "2",
      ]);
      await using b = await startClusterDaemon(redis.url, dir, "b", "cluster", FAST);
      const bytes = pattern(48 << 20, 12);
      {
        await using client = await connect(a.socket);
        await client.put(bytes, { id: "capped" });
      }
      await using client = await connect(b.socket);
      const started = performance.now();
      using handle = await client.get("capped");
      const measured = bytes.length / ((performance.now() - started) / 1000);
      assert(sameBytes(handle.bytes, bytes));
      assert(Math.abs(measured / rate - 1) <= 0.1, `${(measured / 1e6).toFixed(1)} MB/s`);
      const sent = await a.metrics();
      assert(sent.http_fast_served_total! > 0, "pieces sent by the native listener");
      assertEquals(
        sent.http_upload_bytes_total,
        bytes.length,
        "each byte sent once, under the rate",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "in a broadcast between daemons with --http-fast, relays send the pieces they verified from their native listeners",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-native-relay-" });
    try {
      const size = 32 << 20;
      const cap = [
        ...FAST,
        "--max-upload-rate",
        "32MB",
        "--max-uploads",
        "2",
        "--transfer-budget",
        `${(2 * size) >> 20}MiB`,
      ];
      await using holder = await startClusterDaemon(redis.url, dir, "h", "cluster", cap);
      const receivers = await Promise.all(
        ["r1", "r2", "r3", "r4"].map((node) =>
          startClusterDaemon(redis.url, dir, node, "cluster", cap)
        ),
      );
      await using _stop = {
        [Symbol.asyncDispose]: async () => void await Promise.all(receivers.map((r) => r.stop())),
      };
      const bytes = pattern(size, 6);
      {
        await using client = await connect(holder.socket);
        await client.put(bytes, { id: "model" });
      }
      await Promise.all(receivers.map(async (daemon) => {
        await using client = await connect(daemon.socket);
        using handle = await client.get("model");
        assert(sameBytes(handle.bytes, bytes), `bytes on ${daemon.node}`);
      }));
      // Every range a receiver sent (relays while receiving, and after) left from its listener.
      let relayed = 0;
      let relayedNatively = 0;
      for (const daemon of receivers) {
        const text = await (await fetch(`${daemon.url}/metrics`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        })).text();
        const ranges = Number(
          /^packice_http_requests_total\{route="GET \/v1\/objects\/:id",status="206"\} (\S+)$/m
            .exec(text)?.[1] ?? 0,
        );
        const native = Number(/^packice_http_fast_served_total (\S+)$/m.exec(text)?.[1]);
        // Ranges of verified pieces the listener answered without the Deno server.
        const own = Number(/^packice_http_fast_relay_served_total (\S+)$/m.exec(text)?.[1]);
        assertEquals(native, ranges + own, `${daemon.node}: ranges sent natively of those sent`);
        relayed += ranges + own;
        relayedNatively += own;
      }
      assert(relayed > 0, "the receivers relayed pieces");
      assert(relayedNatively > 0, "the listeners answered relayed ranges themselves");
      const uploaded = (await holder.metrics()).http_upload_bytes_total!;
      assert(uploaded <= 1.5 * size, `the holder uploaded ${(uploaded / size).toFixed(2)}x`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
