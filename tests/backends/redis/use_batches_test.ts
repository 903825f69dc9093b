import { assertEquals } from "../../helpers/assert.ts";
import { createAs } from "../../helpers/lease_store_cases.ts";
import { type RedisServer, redisTestOptions, startRedis } from "../../helpers/redis_server.ts";
import { RedisLeaseStore } from "../../../backends/redis/mod.ts";
import { Access, leaseRecord } from "../../../core/mod.ts";

/** How many script calls Redis ran since its statistics were last reset. */
async function scriptCalls(redis: RedisServer): Promise<number> {
  const stats = String(await redis.command("INFO", "commandstats"));
  let calls = 0;
  for (const match of stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) {
    calls += Number(match[1]);
  }
  return calls;
}

Deno.test(
  "the grants and releases of one turn reach Redis as one script call, up to 256 a call",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using leases = await RedisLeaseStore.connect({ url: redis.url, namespace: "n" });
    const now = Date.now();
    for (const id of ["x", "y"]) {
      await createAs(leases, id, `make-${id}`, now);
      await leases.seal(`make-${id}`, { sealedAt: now });
      await leases.release(`make-${id}`);
    }
    const ids = Array.from({ length: 40 }, (_, i) => `r${i}`);
    const lease = (id: string, i: number) =>
      leaseRecord(
        id,
        i % 2 ? "x" : "y",
        i % 3 ? Access.READ : Access.WRITE,
        i % 4 ? undefined : 60_000,
        now,
      );

    await redis.command("CONFIG", "RESETSTAT");
    await Promise.all(ids.map((id, i) => leases.grant(lease(id, i).objectId, lease(id, i))));
    assertEquals(await scriptCalls(redis), 1);
    const untimed = () => redis.command("HLEN", `{n:0}:leases:${leases.node}`);
    const timed = async () => (await redis.command("KEYS", "{n:0}:l:*") as string[]).length;
    assertEquals([await untimed(), await timed()], [30, 10]);
    await Promise.all(ids.map((id) => leases.release(id)));
    assertEquals(await scriptCalls(redis), 2);
    assertEquals([await untimed(), await timed()], [0, 0]);

    const many = Array.from({ length: 300 }, (_, i) => `m${i}`);
    await Promise.all(many.map((id, i) => leases.grant("x", lease(id, i))));
    assertEquals(await scriptCalls(redis), 4);
    await Promise.all(many.map((id) => leases.release(id)));
    assertEquals(await scriptCalls(redis), 6);
  },
);
