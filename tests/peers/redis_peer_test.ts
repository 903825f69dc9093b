import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { closeAlso } from "../helpers/close_also.ts";
import { lifecycleSuite } from "../helpers/lifecycle_suite.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { RedisLeaseStore, type RedisLeaseStoreOptions } from "../../backends/redis/mod.ts";
import { Access, type Clock, MemoryPeer, NotFoundError, StoreUnavailableError } from "../../mod.ts";

const quiet = { info: () => {}, warn: () => {} };

async function redisPeer(
  url: string,
  node: string,
  clock?: Clock,
  options: RedisLeaseStoreOptions = {},
): Promise<MemoryPeer> {
  const leases = await RedisLeaseStore.connect({
    url,
    namespace: "peers",
    node,
    address: `http://${node}:7070`,
    ...(clock === undefined ? {} : { clock }),
    log: quiet,
    ...options,
  });
  return new MemoryPeer({
    leases,
    node,
    sweepInterval: 0,
    ...(clock === undefined ? {} : { clock }),
  });
}

lifecycleSuite("MemoryPeer with a RedisLeaseStore", redisTestOptions, async (clock) => {
  const redis = await startRedis();
  const peer = await redisPeer(redis.url, "a", clock);
  return closeAlso(peer, () => redis[Symbol.asyncDispose]());
});

const bytes = (text: string) => new TextEncoder().encode(text);

async function put(peer: MemoryPeer, id: string, text: string): Promise<void> {
  const { lease, blobs } = await peer.acquire(id, Access.CREATE, { size: bytes(text).length });
  await blobs[0]!.write(0, bytes(text));
  await peer.seal(lease.id);
  await peer.release(lease.id);
}

Deno.test(
  "peers on one namespace share the directory; bytes stay where they are",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using a = await redisPeer(redis.url, "a");
    await using b = await redisPeer(redis.url, "b");
    await put(a, "from-a", "alpha");
    await put(b, "from-b", "beta");
    for (const peer of [a, b]) {
      assertEquals((await peer.list()).map((info) => [info.id, info.holders]).sort(), [
        ["from-a", [{ node: "a", address: "http://a:7070" }]],
        ["from-b", [{ node: "b", address: "http://b:7070" }]],
      ]);
      assertEquals((await peer.stats()).objects, 2);
    }
    assert(await b.has("from-a"));
    assertEquals((await b.stat("from-a")).size, 5);
    await assertRejects(
      () => b.acquire("from-a", Access.READ),
      NotFoundError,
      "not held by this peer",
    );
    assertEquals((await b.stats()).leases, 0);
    const { lease, blobs } = await a.acquire("from-a", Access.READ);
    assertEquals(await blobs[0]!.read(0, 5), bytes("alpha"));
    await a.release(lease.id);
    await assertRejects(
      () => b.acquire("from-a", Access.WRITE),
      NotFoundError,
      "not held by this peer",
    );
    // A delete by its holder takes the object out of the directory for everyone.
    const write = await a.acquire("from-a", Access.WRITE);
    await a.discard(write.lease.id);
    assertEquals(await b.has("from-a"), false);
    assertEquals((await b.list()).map((info) => info.id), ["from-b"]);
  },
);

Deno.test(
  "Redis down: a peer reads what it holds, fails fast otherwise, and recovers",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const liveness = { liveness: 300, backoff: { initial: 20, max: 100 } };
    await using a = await redisPeer(redis.url, "a", undefined, liveness);
    await put(a, "kept", "kept!");
    const before = await a.acquire("kept", Access.READ);

    await redis.stop();
    await eventually(async () => {
      try {
        await a.stat("elsewhere");
        return false;
      } catch (error) {
        return error instanceof StoreUnavailableError;
      }
    }, "the peer sees Redis go");
    const started = performance.now();
    await assertRejects(() => a.acquire("new", Access.CREATE, { size: 1 }), StoreUnavailableError);
    await assertRejects(() => a.list(), StoreUnavailableError);
    assert(performance.now() - started < 100, "fail fast");
    assertEquals((await a.stat("kept")).size, 5);
    const during = await a.acquire("kept", Access.READ);
    assertEquals(await during.blobs[0]!.read(0, 5), bytes("kept!"));
    assertEquals(await before.blobs[0]!.read(0, 5), bytes("kept!"));
    await a.release(before.lease.id);
    await a.release(during.lease.id);
    const open = await a.acquire("kept", Access.READ);

    await redis.restart();
    await using b = await redisPeer(redis.url, "b");
    await eventually(() => b.has("kept"), "the peer registers again");
    assertEquals((await b.stat("kept")).holders, [{ node: "a", address: "http://a:7070" }]);
    // a's calls go through once it has put its state back.
    await eventually(
      () => put(a, "after", "fine").then(() => true, () => false),
      "a is back in Redis",
    );
    await a.release(open.lease.id);
    assertEquals((await a.stats()).leases, 0);
    assertEquals((await b.list()).map((info) => info.id).sort(), ["after", "kept"]);
  },
);
