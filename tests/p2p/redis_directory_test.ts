import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { startRedisCluster } from "../helpers/redis_cluster.ts";
import { RedisDirectory } from "../../p2p/directory/redis.ts";
import type { ContentRecord, Removal } from "../../p2p/directory.ts";
import { ConflictError, NotFoundError } from "../../mod.ts";
import { fakeDigest } from "../helpers/directory_records.ts";

const digest = fakeDigest;
const record = (id: string, c: string): ContentRecord => ({
  id,
  size: 5,
  digest: digest(c),
  pieceSize: 4 << 20,
  pieceDigests: [digest(c === "a" ? "b" : "c")],
});

Deno.test(
  "RedisDirectory keeps holders per content: conflicts refused, joins only existing content",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using one = await RedisDirectory.connect({ url: redis.url, node: "one" });
    await using two = await RedisDirectory.connect({ url: redis.url, node: "two" });

    await assertRejects(
      () =>
        two.announce(record("x", "a"), { node: "two", address: "http://b" }, { existing: true }),
      NotFoundError,
    );
    await one.announce(record("x", "a"), { node: "one", address: "http://a" });
    await two.announce(record("x", "a"), { node: "two", address: "http://b" }, { existing: true });
    await assertRejects(
      () => two.announce(record("x", "d"), { node: "two", address: "http://b" }),
      ConflictError,
    );
    const entry = await two.lookup("x");
    assertEquals({
      ...entry!,
      holders: [...entry!.holders].sort((p, q) => p.node < q.node ? -1 : 1),
    }, {
      ...record("x", "a"),
      holders: [{ node: "one", address: "http://a" }, { node: "two", address: "http://b" }],
    });

    await one.withdraw("x", "one");
    assertEquals((await one.lookup("x"))?.holders, [{ node: "two", address: "http://b" }]);
    await one.withdraw("x", "two");
    assertEquals(await one.lookup("x"), undefined);
    assertEquals(await one.lookup("never"), undefined);
  },
);

Deno.test(
  "RedisDirectory.holders() lists the holders of one content without its record; a join sends no piece digests",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using one = await RedisDirectory.connect({ url: redis.url, node: "one" });
    await one.announce(record("x", "a"), { node: "one", address: "http://a" });
    // A join of the same content needs its digest only: the entry keeps its record.
    await one.announce(
      { ...record("x", "a"), size: 9, pieceDigests: [] },
      { node: "two", address: "http://b", pieces: Uint8Array.of(0x80, 0x00) },
      { existing: true },
    );
    const holders = await one.holders("x", digest("a"));
    assertEquals([...holders!].sort((p, q) => p.node < q.node ? -1 : 1), [
      { node: "one", address: "http://a" },
      { node: "two", address: "http://b", pieces: Uint8Array.of(0x80, 0x00) },
    ]);
    const entry = await one.lookup("x");
    assertEquals({ size: entry!.size, pieceDigests: entry!.pieceDigests }, {
      size: 5,
      pieceDigests: [digest("b")],
    });
    assertEquals(await one.holders("x", digest("d")), undefined);
    assertEquals(await one.holders("never", digest("a")), undefined);
  },
);

Deno.test(
  "RedisDirectory.remove() forgets an object and tells each holder of that content",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using one = await RedisDirectory.connect({
      url: redis.url,
      node: "one",
      pollInterval: 20,
    });
    await using two = await RedisDirectory.connect({
      url: redis.url,
      node: "two",
      pollInterval: 20,
    });
    const heard: Removal[] = [];
    const stop = two.onRemove((removal) => heard.push(removal));
    await one.announce(record("x", "a"), { node: "one", address: "http://a" });
    await two.announce(record("x", "a"), { node: "two", address: "http://b" });
    await one.remove("x");
    assertEquals(await two.lookup("x"), undefined);
    await eventually(() => heard.length === 1, "two hears of the removal", { interval: 10 });
    assertEquals(heard, [{ id: "x", digest: digest("a") }]);
    stop();
  },
);

Deno.test(
  "RedisDirectory works on a three-master Redis Cluster: entries and removals spread over slots",
  redisTestOptions,
  async () => {
    await using cluster = await startRedisCluster();
    await using one = await RedisDirectory.connect({
      url: cluster.url,
      node: "one",
      pollInterval: 20,
    });
    await using two = await RedisDirectory.connect({
      url: cluster.url,
      node: "two",
      pollInterval: 20,
    });
    const heard: Removal[] = [];
    two.onRemove((removal) => heard.push(removal));
    const ids = Array.from({ length: 12 }, (_, i) => `object-${i}`);
    for (const id of ids) {
      await one.announce(record(id, "a"), { node: "one", address: "http://a" });
      await two.announce(record(id, "a"), { node: "two", address: "http://b" }, { existing: true });
    }
    for (const id of ids) assertEquals((await two.lookup(id))?.holders.length, 2);
    for (const id of ids) await one.remove(id);
    for (const id of ids) assertEquals(await one.lookup(id), undefined);
    await eventually(() => heard.length === ids.length, "two hears of every removal", {
      interval: 10,
    });
    assertEquals(heard.map((removal) => removal.id).sort(), [...ids].sort());
  },
);
