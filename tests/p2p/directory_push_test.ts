import { assert, assertEquals } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { startRedisCluster } from "../helpers/redis_cluster.ts";
import { RedisDirectory } from "../../p2p/directory/redis.ts";
import type { Holder, HolderChange } from "../../p2p/directory.ts";
import { FALLBACK_MS, HolderListing } from "../../p2p/holder_listing.ts";
import { pushedRecord } from "../helpers/directory_records.ts";

const record = pushedRecord;

Deno.test(
  "RedisDirectory pushes holder changes to a watcher of the object, and only while it watches",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using one = await RedisDirectory.connect({ url: redis.url, node: "one" });
    await using two = await RedisDirectory.connect({ url: redis.url, node: "two" });
    const changes: HolderChange[] = [];
    const other: HolderChange[] = [];
    {
      using watch = two.watch("pushed", (change) => changes.push(change));
      using _other = two.watch("other", (change) => other.push(change));
      await eventually(() => watch.live, "the watch is live");
      assertEquals(await redis.command("PUBSUB", "SHARDNUMSUB", "packice:holders:{pushed}"), [
        "packice:holders:{pushed}",
        1,
      ]);

      await one.announce(record, { node: "one", address: "http://a", piecePort: 9000 });
      const partial = new Uint8Array([0b1010_0000]);
      const started = performance.now();
      await two.announce(record, { node: "two", address: "http://b", pieces: partial }, {
        existing: true,
      });
      await eventually(() => changes.length === 2, "both announces are pushed", { interval: 1 });
      // Well under a poll: a push, not a lookup.
      assert(performance.now() - started < 100, `pushed in ${performance.now() - started} ms`);
      assertEquals(changes, [
        {
          kind: "announced",
          digest: record.digest,
          holder: { node: "one", address: "http://a", piecePort: 9000 },
        },
        {
          kind: "announced",
          digest: record.digest,
          holder: { node: "two", address: "http://b", pieces: partial },
        },
      ]);
      await one.withdraw("pushed", "one");
      // A holder it does not record: nothing is pushed.
      await one.withdraw("pushed", "nobody");
      await one.remove("pushed");
      await eventually(() => changes.length === 4, "the withdrawal and the removal are pushed");
      assertEquals(changes.slice(2), [{ kind: "withdrawn", node: "one" }, { kind: "removed" }]);
      assertEquals(other, []);
    }
    // Both watches ended: their channels are unsubscribed, and nothing more arrives.
    await eventually(async () => {
      const reply = await redis.command("PUBSUB", "SHARDCHANNELS") as string[];
      return reply.length === 0;
    }, "no channel is subscribed");
    assertEquals(two.watched, 0);
    await one.announce(record, { node: "one", address: "http://a" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assertEquals(changes.length, 4);
  },
);

Deno.test(
  "RedisDirectory.announce() answers with the holders just after it when asked for a listing",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using one = await RedisDirectory.connect({ url: redis.url, node: "one" });
    assertEquals(await one.announce(record, { node: "one", address: "http://a" }), undefined);
    const pieces = new Uint8Array([0b1000_0000]);
    const listed = await one.announce(
      record,
      { node: "two", address: "http://b", pieces, piecePort: 9001 },
      { existing: true, listing: true },
    );
    assertEquals(
      [...listed!].sort((p, q) => p.node < q.node ? -1 : 1),
      [
        { node: "one", address: "http://a" },
        { node: "two", address: "http://b", pieces, piecePort: 9001 },
      ],
    );
  },
);

Deno.test(
  "RedisDirectory watches come back live after Redis restarts, and see changes again",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using one = await RedisDirectory.connect({
      url: redis.url,
      node: "one",
      connectAttempts: Infinity,
      backoff: { initial: 20, max: 100 },
    });
    const changes: HolderChange[] = [];
    using watch = one.watch("pushed", (change) => changes.push(change));
    await eventually(() => watch.live, "the watch is live");
    await redis.stop();
    await eventually(() => !watch.live, "the watch is down with Redis");
    await redis.restart();
    await eventually(() => watch.live, "the watch is live again", { timeout: 10_000 });
    await eventually(async () => {
      try {
        await one.announce(record, { node: "one", address: "http://a" });
        return true;
      } catch {
        return false;
      }
    }, "Redis answers again");
    await eventually(() => changes.length > 0, "the announce is pushed");
    assertEquals(changes[0]!.kind, "announced");
  },
);

Deno.test(
  "a transfer's listing learns of a new partial holder from a push, well before its next lookup",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using holderSide = await RedisDirectory.connect({ url: redis.url, node: "h" });
    await using receiver = await RedisDirectory.connect({ url: redis.url, node: "r" });
    const whole: Holder = { node: "h", address: "http://h" };
    await holderSide.announce(record, whole);
    let lookups = 0;
    const listing: HolderListing = new HolderListing({
      initial: [whole],
      lookup: async () => {
        lookups++;
        return [...(await receiver.holders(record.id, record.digest) ?? [])];
      },
      ask: () => Promise.resolve(undefined),
      live: () => watch.live,
    });
    const watch = receiver.watch(record.id, (change) => listing.apply(change));
    try {
      const announced: Holder[] = [];
      listing.onChange((holder) => announced.push(holder));
      await eventually(() => watch.live, "the watch is live");
      // Once live, one lookup catches what came before; then none for a while.
      await listing.next();
      await listing.next();
      assertEquals(lookups, 1);
      const pieces = new Uint8Array([0b1100_0000, 0]);
      const started = performance.now();
      await holderSide.announce(record, { node: "p", address: "http://p", pieces }, {
        existing: true,
      });
      await eventually(() => announced.length === 1, "the partial holder is pushed", {
        interval: 1,
      });
      const ms = performance.now() - started;
      assert(ms < FALLBACK_MS / 5, `learnt in ${ms.toFixed(1)} ms`);
      assertEquals(
        (await listing.next()).map((holder) => [holder.node, holder.pieces]),
        [["h", undefined], ["p", pieces]],
      );
      assertEquals(lookups, 1);
      // The fallback lookup comes all the same.
      await new Promise((resolve) => setTimeout(resolve, FALLBACK_MS));
      await listing.next();
      assertEquals(lookups, 2);
    } finally {
      watch[Symbol.dispose]();
      await listing.settled();
    }
  },
);

Deno.test(
  "RedisDirectory on a three-master Redis Cluster pushes each object's changes from the master of its slot",
  redisTestOptions,
  async () => {
    await using cluster = await startRedisCluster();
    await using one = await RedisDirectory.connect({ url: cluster.url, node: "one" });
    await using two = await RedisDirectory.connect({ url: cluster.url, node: "two" });
    const ids = Array.from({ length: 6 }, (_, i) => `object-${i}`);
    const heard = new Map<string, HolderChange[]>(ids.map((id) => [id, []]));
    {
      const watches = ids.map((id) => two.watch(id, (change) => heard.get(id)!.push(change)));
      try {
        await eventually(() => watches.every((watch) => watch.live), "every watch is live");
        for (const id of ids) {
          await one.announce({ ...record, id }, { node: "one", address: "http://a" });
        }
        await eventually(
          () => [...heard.values()].every((changes) => changes.length === 1),
          "each object's announce is pushed to its watch",
        );
        for (const id of ids) {
          assertEquals(heard.get(id), [{
            kind: "announced",
            digest: record.digest,
            holder: { node: "one", address: "http://a" },
          }]);
        }
      } finally {
        for (const watch of watches) watch[Symbol.dispose]();
      }
    }
    assertEquals(two.watched, 0);
    for (const id of ids) await one.withdraw(id, "one");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert([...heard.values()].every((changes) => changes.length === 1), "nothing after the end");
  },
);
