import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemon } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { connect, NotFoundError } from "../../mod.ts";

Deno.test(
  "an object put on one daemon is read on each other one; the second read is local",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-cluster-" });
    try {
      await using a = await startClusterDaemon(redis.url, dir, "a");
      await using b = await startClusterDaemon(redis.url, dir, "b");
      await using c = await startClusterDaemon(redis.url, dir, "c");
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
        const first = await daemon.metrics();
        assertEquals(first.cluster_fetches_total, 1);
        assertEquals(first.cluster_fetch_bytes_total, bytes.length);
        using again = await client.get("weights");
        assert(sameBytes(again.bytes, bytes));
        const second = await daemon.metrics();
        assertEquals(second.cluster_fetches_total, 1);
        assertEquals(second.cluster_local_hits_total, first.cluster_local_hits_total! + 1);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
