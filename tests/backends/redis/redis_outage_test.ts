import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";
import { type RedisServer, redisTestOptions, startRedis } from "../../helpers/redis_server.ts";
import { RedisLeaseStore, type RedisLeaseStoreOptions } from "../../../backends/redis/mod.ts";
import {
  Access,
  leaseRecord,
  type LocalObjects,
  type ObjectInfo,
  StoreUnavailableError,
} from "../../../core/mod.ts";

const quiet = { info: () => {}, warn: () => {} };

function options(url: string, node: string): RedisLeaseStoreOptions {
  return {
    url,
    namespace: "outage",
    node,
    address: `http://${node}:7070`,
    liveness: 300,
    backoff: { initial: 20, max: 100 },
    log: quiet,
  };
}

/** What a peer would report holding: the objects sealed through `store`. */
function holdings(): LocalObjects & { add(info: ObjectInfo): void } {
  const held = new Map<string, ObjectInfo>();
  return {
    add: (info) => held.set(info.id, info),
    get: (id) => held.get(id),
    list: () => [...held.values()],
    digest: (id) => Promise.resolve(held.get(id)?.digest),
    forfeit: (id) => held.delete(id),
  };
}

async function sealedObject(store: RedisLeaseStore, id: string): Promise<ObjectInfo> {
  const now = Date.now();
  const info: ObjectInfo = {
    id,
    state: "CREATING",
    size: 4,
    blobSizes: [4],
    meta: {},
    createdAt: now,
  };
  await store.create(info, leaseRecord(`make-${id}`, id, Access.CREATE, undefined, now));
  const sealed = await store.seal(`make-${id}`, { sealedAt: now });
  await store.release(`make-${id}`);
  return sealed;
}

/** Attaches fresh {@link holdings} to `store` and seals object `id` through it, held there. */
async function holdSealed(store: RedisLeaseStore, id: string): Promise<void> {
  const local = holdings();
  store.attach(local);
  local.add(await sealedObject(store, id));
}

/** The ids of the leases without a TTL that node `node` has in Redis. */
async function leasesOf(redis: RedisServer, node: string): Promise<string[]> {
  return await redis.command("HKEYS", `{outage:0}:leases:${node}`) as string[];
}

/** Milliseconds of liveness node `node` has left, by Redis time. */
async function livenessLeft(redis: RedisServer, node: string): Promise<number> {
  const until = await redis.command("ZSCORE", "{outage}:alive", node);
  const [seconds, micros] = await redis.command("TIME") as [string, string];
  return Number(until) - (Number(seconds) * 1000 + Math.floor(Number(micros) / 1000));
}

const read = (id: string, lease: string) =>
  leaseRecord(lease, id, Access.READ, undefined, Date.now());

Deno.test(
  "Redis restarted empty: calls fail fast, held reads go on, the node registers again",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using a = await RedisLeaseStore.connect(options(redis.url, "a"));
    await holdSealed(a, "x");
    await sealedObject(a, "gone-with-redis");
    await a.grant("x", read("x", "r1"));

    await redis.stop();
    await eventually(() => !a.available, "the store sees Redis go");

    // Calls that need Redis fail at once.
    const started = performance.now();
    const now = Date.now();
    await assertRejects(
      () =>
        a.create(
          { id: "y", state: "CREATING", size: 1, blobSizes: [1], meta: {}, createdAt: now },
          leaseRecord("c1", "y", Access.CREATE, undefined, now),
        ),
      StoreUnavailableError,
    );
    await assertRejects(() => a.stat("gone-with-redis"), StoreUnavailableError);
    await assertRejects(() => a.list(), StoreUnavailableError);
    await assertRejects(
      () => a.grant("gone-with-redis", read("gone-with-redis", "r2")),
      StoreUnavailableError,
    );
    assert(performance.now() - started < 100, "fail fast");

    // Reads of what this node holds keep working, leases and all.
    assertEquals((await a.stat("x"))?.id, "x");
    assertEquals((await a.grant("x", read("x", "r3"))).id, "x");
    await a.release("r3");
    await a.release("r1");
    await a.grant("x", read("x", "r4"));
    assertEquals((await a.lease("r4")).objectId, "x");

    await redis.restart();
    await eventually(() => a.available, "the store reconnects");
    await using b = await RedisLeaseStore.connect(options(redis.url, "b"));
    const x = await b.stat("x");
    assertEquals([x?.state, x?.holders], ["SEALED", [{ node: "a", address: "http://a:7070" }]]);
    assertEquals(await b.stat("gone-with-redis"), undefined);
    // The read lease taken during the outage is in Redis now, and releases there.
    assertEquals(await leasesOf(redis, "a"), ["r4"]);
    await a.release("r4");
    assertEquals(await leasesOf(redis, "a"), []);
    assertEquals((await a.counts()).objects, 1);
  },
);

Deno.test(
  "Redis restarted with its data: leases ended during the outage end there too",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using a = await RedisLeaseStore.connect(options(redis.url, "a"));
    await holdSealed(a, "x");
    await a.grant("x", read("x", "r1"));
    await a.grant("x", read("x", "r2"));
    assertEquals((await leasesOf(redis, "a")).length, 2);
    await redis.command("SAVE");
    await redis.stop();
    await eventually(() => !a.available, "the store sees Redis go");

    await a.release("r1");
    await redis.restart();
    await eventually(() => a.available, "the store reconnects");
    assertEquals(await leasesOf(redis, "a"), ["r2"]);
    await a.release("r2");
    assertEquals((await leasesOf(redis, "a")).length, 0);
  },
);

Deno.test("a node taken for dead registers again when it finds out", redisTestOptions, async () => {
  await using redis = await startRedis();
  // a beats every second, b every 100 ms: b reaps a well before a's next beat.
  await using a = await RedisLeaseStore.connect({ ...options(redis.url, "a"), liveness: 3000 });
  await using b = await RedisLeaseStore.connect(options(redis.url, "b"));
  await holdSealed(a, "x");
  await a.grant("x", read("x", "r1"));
  // Right after a's beat, its liveness key goes, as if a stalled past its liveness.
  await eventually(
    async () => await livenessLeft(redis, "a") > 2950,
    "a beats",
  );
  await redis.command("ZREM", "{outage}:alive", "a");
  await eventually(async () => (await b.stat("x")) === undefined, "b reaps a", { timeout: 800 });
  assertEquals((await leasesOf(redis, "a")).length, 0);
  await eventually(async () => (await b.stat("x")) !== undefined, "a registers again");
  assertEquals((await b.stat("x"))?.holders, [{ node: "a", address: "http://a:7070" }]);
  await eventually(
    async () => ((await leasesOf(redis, "a")).length) === 1,
    "r1 is back",
  );
  await a.release("r1");
  assertEquals((await leasesOf(redis, "a")).length, 0);
});

Deno.test(
  "Redis up but not answering: calls time out, held reads go on, service resumes",
  redisTestOptions,
  async () => {
    const commandTimeout = 300;
    await using redis = await startRedis();
    // A heartbeat every 10 s: none lands while Redis is stopped, so the call below meets the hang.
    await using a = await RedisLeaseStore.connect({
      ...options(redis.url, "a"),
      liveness: 30_000,
      commandTimeout,
    });
    await holdSealed(a, "x");
    const pid = redis.pid!;

    Deno.kill(pid, "SIGSTOP");
    try {
      const started = performance.now();
      await assertRejects(
        () => a.stat("not-here"),
        StoreUnavailableError,
        `did not answer within ${commandTimeout} ms`,
      );
      const waited = performance.now() - started;
      assert(waited >= commandTimeout - 5, `waits for the timeout, waited ${waited} ms`);
      assert(waited < commandTimeout + 500, `bounded by the timeout, waited ${waited} ms`);
      assert(!a.available, "the store drops the hung connection");

      // Reads of what this node holds keep working.
      assertEquals((await a.grant("x", read("x", "r1"))).id, "x");
      await a.release("r1");
      await assertRejects(() => a.list(), StoreUnavailableError);
    } finally {
      Deno.kill(pid, "SIGCONT");
    }

    await eventually(() => a.available, "the store reconnects");
    assertEquals((await a.stat("x"))?.state, "SEALED");
    await a.grant("x", read("x", "r2"));
    assertEquals(await leasesOf(redis, "a"), ["r2"]);
    await a.release("r2");
  },
);
