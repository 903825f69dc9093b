import { computeDigest } from "../../../backends/digest.ts";
import { RedisLeaseStore } from "../../../backends/redis/mod.ts";
import { connect, MemoryPeer } from "../../../mod.ts";
import { assertEquals } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";
import { redisTestOptions, startRedis } from "../../helpers/redis_server.ts";

const quiet = { info: () => {}, warn: () => {} };

Deno.test(
  "a peer with a digest records each sealed object's digest in the shared directory",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const store = (node: string) =>
      RedisLeaseStore.connect({ url: redis.url, namespace: "digests", node, log: quiet });
    await using writer = new MemoryPeer({
      leases: await store("writer"),
      node: "writer",
      sweepInterval: 0,
      digest: computeDigest,
    });
    await using observer = new MemoryPeer({
      leases: await store("observer"),
      node: "observer",
      sweepInterval: 0,
    });
    await using client = await connect(writer);
    const data = new Uint8Array(3 << 20).map((_, i) => i % 253);
    await client.put(data, { id: "weights" });
    using handle = await client.get("weights");
    const expected = await computeDigest([{
      size: data.length,
      openView: () => undefined,
      closeView: () => {},
      read: (offset, length) => Promise.resolve(data.subarray(offset, offset + length)),
      write: () => Promise.reject(new Error("read-only")),
    }]);
    await eventually(
      async () => (await observer.stat("weights")).digest !== undefined,
      "the directory has the digest",
    );
    assertEquals((await observer.stat("weights")).digest, expected);
    assertEquals(handle.size, data.length);
    assertEquals((await writer.stats()).leases, 1);
  },
);
