import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { createAs, LEASE_STORE_CASES, store } from "../../helpers/lease_store_cases.ts";
import { redisTestOptions, startRedis } from "../../helpers/redis_server.ts";
import { RedisLeaseStore } from "../../../backends/redis/mod.ts";
import { StoreUnavailableError } from "../../../core/mod.ts";

for (const [name, run] of Object.entries(LEASE_STORE_CASES)) {
  Deno.test(name, redisTestOptions, async () => {
    await using redis = await startRedis();
    await run({ url: redis.url, namespace: "test" });
  });
}

Deno.test(
  "connect() retries with backoff, then fails with a clear error",
  redisTestOptions,
  async () => {
    const warnings: string[] = [];
    const log = { info: () => {}, warn: (message: string) => warnings.push(message) };
    const port = await (async () => {
      await using redis = await startRedis();
      return redis.port;
    })();
    const started = Date.now();
    const error = await assertRejects(
      () =>
        RedisLeaseStore.connect({
          url: `redis://:secret@127.0.0.1:${port}/0`,
          connectAttempts: 3,
          backoff: { initial: 20, max: 40 },
          log,
        }),
      StoreUnavailableError,
    );
    assert(Date.now() - started < 2000);
    assert(
      error.message.startsWith(`Cannot connect to Redis at redis://:***@127.0.0.1:${port}/0:`),
    );
    assert(error.message.endsWith("(3 attempts)"), error.message);
    assertEquals(warnings.length, 2);
    assert(warnings.every((warning) => !warning.includes("secret")));
  },
);

Deno.test("connect() keeps trying until Redis comes up", redisTestOptions, async () => {
  const port = await (async () => {
    await using redis = await startRedis();
    return redis.port;
  })();
  let attempts = 0;
  const log = { info: () => {}, warn: () => void attempts++ };
  const connecting = RedisLeaseStore.connect({
    url: `redis://127.0.0.1:${port}/0`,
    connectAttempts: Infinity,
    backoff: { initial: 20, max: 50 },
    log,
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await using _redis = await startRedis({ port });
  await using leases = await connecting;
  assert(attempts >= 2);
  assertEquals(await leases.list(), []);
});

Deno.test(
  "a password-protected Redis: the right password works, a wrong one fails at once",
  redisTestOptions,
  async () => {
    await using redis = await startRedis({ password: "s3cret pass" });
    await using leases = await store({ url: redis.url, namespace: "test" }, "a");
    const now = Date.now();
    await createAs(leases, "x", "c1", now);
    assertEquals((await leases.stat("x"))?.state, "CREATING");
    let warned = 0;
    const started = Date.now();
    for (
      const url of [`redis://:wrong@127.0.0.1:${redis.port}/0`, `redis://127.0.0.1:${redis.port}/0`]
    ) {
      const error = await assertRejects(
        () =>
          store({ url, namespace: "test" }, "b", {
            log: { info: () => {}, warn: () => void warned++ },
          }),
        StoreUnavailableError,
      );
      assert(!error.message.includes("wrong"), error.message);
      assert(/WRONGPASS|NOAUTH/.test(error.message), error.message);
    }
    assertEquals(warned, 0);
    assert(Date.now() - started < 2000);
  },
);
