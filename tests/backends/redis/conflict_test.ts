/**
 * A peer never hands out its copy of an object with a size or digest the
 * directory took from other bytes: when the directory records other content
 * under an id this peer holds, the copy here is dropped, logged and counted.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { redisTestOptions, startRedis } from "../../helpers/redis_server.ts";
import { RedisLeaseStore } from "../../../backends/redis/mod.ts";
import { Access, leaseRecord, MemoryPeer, NotFoundError } from "../../../mod.ts";

Deno.test(
  "an id deleted and recorded again with other bytes elsewhere: the copy here is dropped, never served",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const warnings: string[] = [];
    const log = { info: () => {}, warn: (message: string) => warnings.push(message) };
    const target = { url: redis.url, namespace: "conflict" };
    const leases = await RedisLeaseStore.connect({ ...target, node: "a", log });
    await using a = new MemoryPeer({ leases, node: "a" });
    await using other = await RedisLeaseStore.connect({ ...target, node: "b" });
    await a.putObject([new TextEncoder().encode("14 bytes of a.")], 14, { id: "x" });
    const before = await a.acquire("x", Access.READ);
    assertEquals([before.object.size, before.blobs[0]!.size], [14, 14]);
    await a.release(before.lease.id);

    // Another node deletes x and records a 15-byte x of its own, while a still holds its copy.
    const now = Date.now();
    await other.grant("x", leaseRecord("w", "x", Access.WRITE, undefined, now));
    await other.discard("w");
    const info = { id: "x", state: "CREATING" as const, size: 15, blobSizes: [15], meta: {} };
    await other.create(
      { ...info, createdAt: now },
      leaseRecord("c", "x", Access.CREATE, undefined, now),
    );
    await other.seal("c", { sealedAt: now });
    await other.release("c");

    await assertRejects(() => a.acquire("x", Access.READ), NotFoundError, "not held by this peer");
    assertEquals((await a.metrics()).directory_conflicts_total, 1);
    assert(
      warnings.some((warning) => warning.includes("Dropped the copy of object x")),
      String(warnings),
    );
    assertEquals((await a.stats()).bytes, 0);
    // The directory keeps the other node's object, and its holder.
    assertEquals((await a.stat("x")).holders?.map((holder) => holder.node), ["b"]);
  },
);
