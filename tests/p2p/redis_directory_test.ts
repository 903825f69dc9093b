import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { RedisDirectory } from "../../p2p/directory/redis.ts";
import type { ContentRecord, Removal } from "../../p2p/directory.ts";
import { ConflictError, NotFoundError } from "../../mod.ts";

const digest = (c: string) => `sha256:${c.repeat(64)}`;
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
