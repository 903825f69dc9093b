/**
 * Pages of a peer whose lease store is Redis come from the store's index by
 * put order (`backends/redis/list_after.ts`): each reads its own part, in
 * one order shared by every peer on the namespace, with no skip or repeat
 * across deletes, puts and expiries between pages; on a Redis Cluster, none
 * missed either when a master's clock is behind.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { shardOf } from "../../../backends/redis/keys.ts";
import { eventually } from "../../helpers/eventually.ts";
import { createAs, store } from "../../helpers/lease_store_cases.ts";
import { type RedisCluster, startRedisCluster } from "../../helpers/redis_cluster.ts";
import { type RedisServer, redisTestOptions, startRedis } from "../../helpers/redis_server.ts";
import { cursorAfter, formatCursor } from "../../../core/list_page.ts";
import { type Exec, RedisConnection } from "../../../backends/redis/connection.ts";
import { ListAfter } from "../../../backends/redis/list_after.ts";
import { SCRIPTS } from "../../../backends/redis/scripts.ts";
import { ShardCalls } from "../../../backends/redis/shard_calls.ts";
import {
  Client,
  InvalidArgumentError,
  ManualClock,
  MemoryPeer,
  type ObjectInfo,
} from "../../../mod.ts";

const MiB = 1024 * 1024;

function ids(infos: readonly ObjectInfo[]): string[] {
  return infos.map((info) => info.id);
}

/** Puts `count` objects through `client`, `batch` at a time; returns the ids batch by batch. */
async function putMany(
  client: Client,
  count: number,
  batch: number,
  options: (i: number) => { ttl?: number } = () => ({}),
): Promise<string[][]> {
  const batches: string[][] = [];
  for (let start = 0; start < count; start += batch) {
    const end = Math.min(count, start + batch);
    batches.push(
      await Promise.all(
        Array.from(
          { length: end - start },
          (_, k) => client.put(`o${start + k}`, options(start + k)),
        ),
      ),
    );
  }
  return batches;
}

/**
 * Every object of `peer` (of each in turn), a page of `limit` at a time,
 * from `from` or the start, calling `between` after each page.
 */
async function pageAll(
  peer: MemoryPeer | MemoryPeer[],
  limit: number,
  between: (seen: string[], cursor: string) => Promise<void> = () => Promise.resolve(),
  from?: string,
): Promise<ObjectInfo[]> {
  const peers = Array.isArray(peer) ? peer : [peer];
  const seen: ObjectInfo[] = [];
  let after = from;
  for (let page = 0;; page++) {
    const { objects, next } = await peers[page % peers.length]!.listPage(
      after === undefined ? { limit } : { after, limit },
    );
    seen.push(...objects);
    if (next === undefined) return seen;
    after = next;
    await between(ids(seen), next);
  }
}

/** The shards of `namespace` (of `shards`) whose hash slots the master on `port` serves. */
async function shardsOn(
  cluster: RedisCluster,
  port: number,
  namespace: string,
  shards: number,
): Promise<Set<number>> {
  const nodes = await cluster.cli(port, "CLUSTER", "NODES");
  const myself = nodes.split("\n").find((line) => line.includes("myself"))!;
  const ranges = myself.split(" ").slice(8).map((range) => range.split("-").map(Number));
  const served = new Set<number>();
  for (let shard = 0; shard < shards; shard++) {
    const slot = Number(await cluster.cli(port, "CLUSTER", "KEYSLOT", `{${namespace}:${shard}}`));
    if (ranges.some(([from, to = from]) => slot >= from! && slot <= to!)) served.add(shard);
  }
  return served;
}

/**
 * What a cursor of the Redis store is before its id, for any number of
 * shards: a place (16 digits for a few centuries more), its store's check:
 * 23 characters.
 */
const CURSOR_HEAD = 23;

/** Asserts that `cursor` is a place, a check and an id, its head within {@link CURSOR_HEAD}. */
function assertCursorBound(cursor: string): void {
  const head = cursor.slice(0, cursor.indexOf(":"));
  assert(/^\d{16}-[0-9a-z]{6}$/.test(head) && head.length <= CURSOR_HEAD, cursor);
}

/** Calls per command Redis ran since its statistics were reset, scripts' own included. */
async function commandCalls(redis: RedisServer): Promise<Map<string, number>> {
  const stats = String(await redis.command("INFO", "commandstats"));
  const calls = new Map<string, number>();
  for (const match of stats.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) {
    calls.set(match[1]!, Number(match[2]));
  }
  return calls;
}

Deno.test("20k objects paged through the Redis store", redisTestOptions, async (t) => {
  await using redis = await startRedis();
  const clock = new ManualClock(Date.now());
  const target = { url: redis.url, namespace: "pages" };
  await using peer = new MemoryPeer({
    leases: await store(target, "a", { clock }),
    node: "a",
    clock,
    capacity: 64 * MiB,
    sweepInterval: 0,
  });
  const client = new Client(peer);
  // Every 997th with an object TTL that has passed when the listing starts,
  // and as many whose TTL passes during the listing.
  const ttl = (i: number) => i % 997 === 5 ? { ttl: 1000 } : i % 997 === 500 ? { ttl: 2000 } : {};
  const batches = await putMany(client, 20_000, 250, ttl);
  clock.advance(1000);
  const expired = new Set(batches.flat().filter((_, i) => i % 997 === 5));
  const expiring = new Set(batches.flat().filter((_, i) => i % 997 === 500));
  const batchOf = new Map(batches.flatMap((batch, b) => batch.map((id) => [id, b] as const)));

  await t.step("a page reads its own objects, not the namespace", async () => {
    // The objects past their TTL leave (a list finds them), before the count starts.
    await peer.list();
    await eventually(
      async () => (await peer.stats()).objects === 20_000 - expired.size,
      "the objects past their TTL are gone",
    );
    const { next } = await peer.listPage({ limit: 10_000 });
    await redis.command("CONFIG", "RESETSTAT");
    const page = await peer.listPage({ after: next!, limit: 100 });
    assertEquals(page.objects.length, 100);
    const calls = await commandCalls(redis);
    const total = [...calls.values()].reduce((a, b) => a + b, 0);
    // One script call; in it the index range, the records it names, and O(1) checks.
    assertEquals(calls.get("evalsha"), 1);
    assert((calls.get("hgetall") ?? 0) <= 102, `hgetall: ${calls.get("hgetall")}`);
    assertEquals(calls.get("smembers"), undefined);
    assert(total < 120, `${total} commands for a page of 100: ${[...calls]}`);
  });

  await t.step("no skip or repeat across deletes, puts and expiries between pages", async () => {
    const other = await store(target, "c", { clock });
    const deleted = new Set<string>();
    const late: string[] = [];
    let expiredAt = -1;
    const all = batches.flat();
    const seen = await pageAll(peer, 500, async (seen, cursor) => {
      if (seen.length === 5000 || seen.length === 12_000) {
        // The cursor's own object, one before it, and ones ahead.
        const own = cursor.slice(cursor.indexOf(":") + 1);
        assertEquals(own, seen[seen.length - 1]);
        const ahead = all.slice(seen.length + 3000, seen.length + 3003);
        for (const id of [own, seen[seen.length - 2]!, ...ahead]) {
          await client.delete(id);
          deleted.add(id);
        }
        for (let i = 0; i < 3; i++) late.push(await client.put(`late ${i}`));
        // Being created elsewhere: one stays, one's record Redis expires before its turn.
        const now = clock.now();
        await createAs(other, `creating-${seen.length}`, `cl-${seen.length}`, now);
        late.push(`creating-${seen.length}`);
        await createAs(other, `expiring-${seen.length}`, `el-${seen.length}`, now, 50);
      }
      if (seen.length === 8000) {
        clock.advance(1000);
        expiredAt = batchOf.get(seen[seen.length - 1]!)!;
      }
      if (seen.length === 12_500) await new Promise((resolve) => setTimeout(resolve, 200));
    });
    const order = ids(seen);
    assertEquals(new Set(order).size, order.length, "no object twice");
    const listed = new Set(order);
    // Expired during the listing: listed when put before the cursor of then, not after.
    for (const id of expiring) {
      const batch = batchOf.get(id)!;
      if (batch !== expiredAt) assertEquals(listed.has(id), batch < expiredAt, id);
    }
    const live = all.filter((id) =>
      !expired.has(id) && (!deleted.has(id) && !expiring.has(id) || listed.has(id))
    );
    assertEquals(order.slice(0, live.length).toSorted(), live.toSorted());
    // In put order: batch by batch (the puts of one batch race), then the late ones.
    const places = order.slice(0, live.length).map((id) => batchOf.get(id)!);
    assert(places.every((b, i) => i === 0 || places[i - 1]! <= b), "batches in put order");
    assertEquals(order.slice(live.length), late);
    assertEquals(seen.find((info) => info.id === "creating-5000")?.state, "CREATING");
    // The expired records' entries went with them.
    for (const id of ["expiring-5000", "expiring-12000"]) {
      assertEquals(await redis.command("ZSCORE", "{pages:0}:order", id), null);
    }
    // The bare list shows the same objects in the same order.
    assertEquals(ids(await peer.list()), ids(await pageAll(peer, 1000)));
    await other.close();
  });
});

Deno.test(
  "two peers on one Redis page one order, a cursor of one going on at the other",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const target = { url: redis.url, namespace: "shared" };
    await using a = new MemoryPeer({ leases: await store(target, "a"), node: "a" });
    await using b = new MemoryPeer({ leases: await store(target, "b"), node: "b" });
    const clients = [new Client(a), new Client(b)];
    const put: string[] = [];
    for (let i = 0; i < 600; i++) put.push(await clients[i % 2]!.put(`object ${i}`));
    const deleted: string[] = [];
    const late: string[] = [];
    const seen = await pageAll([a, b], 50, async (seen) => {
      if (seen.length === 200) {
        // Each by the peer that holds it.
        for (const id of [seen[199]!, put[300]!]) {
          await clients[put.indexOf(id) % 2]!.delete(id);
          deleted.push(id);
        }
        late.push(await clients[0]!.put("late on a"), await clients[1]!.put("late on b"));
      }
    });
    assertEquals(ids(seen), [...put.filter((id) => id !== put[300]), ...late]);
    const now = [...put.filter((id) => !deleted.includes(id)), ...late];
    assertEquals(ids(await pageAll(a, 64)), now);
    assertEquals(ids(await pageAll(b, 64)), now);
    assertEquals(ids(await a.list()), now);
    assertEquals(ids(await b.list()), now);
    // From the store itself, by the places a page gave.
    await using leases = await store(target, "c");
    const first = await leases.listAfter(undefined, 7);
    assertEquals(ids(first.map((one) => one.info)), now.slice(0, 7));
    const last = first[6]!;
    const second = await leases.listAfter({ stage: 0, order: last.order, id: last.info.id }, 5);
    assertEquals(ids(second.map((one) => one.info)), now.slice(7, 12));
    await assertRejects(() => leases.listAfter(undefined, 0), RangeError);
  },
);

Deno.test(
  "a cursor of one Redis is refused on another with a namespace of the same name",
  redisTestOptions,
  async () => {
    await using one = await startRedis();
    await using two = await startRedis();
    const peers = [];
    for (const redis of [one, two]) {
      const peer = new MemoryPeer({
        leases: await store({ url: redis.url, namespace: "same" }, "a"),
        node: "a",
      });
      for (const id of ["x", "y", "z"]) await new Client(peer).put(id, { id });
      peers.push(peer);
    }
    await using a = peers[0]!;
    await using b = peers[1]!;
    const next = (await a.listPage({ limit: 1 })).next!;
    assertCursorBound(next);
    const error = await assertRejects(() => b.listPage({ after: next }), InvalidArgumentError);
    assertEquals(error.code, "INVALID_ARGUMENT");
    assert(error.message.includes("list from the start"), error.message);
    assertEquals(ids((await a.listPage({ after: next })).objects), ["y", "z"]);
    // Without its check, as the versions before made it: taken, as they could not tell (b lists
    // from a's place: its own three, put after it).
    const old = next.replace(/-[0-9a-z]{6}:/, ":");
    assertEquals(ids((await b.listPage({ after: old })).objects), ["x", "y", "z"]);
  },
);

Deno.test(
  "records made before the index get places on first use, in the order they were made",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const clock = new ManualClock(1_000_000);
    const leases = await store({ url: redis.url, namespace: "old" }, "a", { clock });
    await using peer = new MemoryPeer({ leases, node: "a", clock });
    const client = new Client(peer);
    const put: string[] = [];
    for (let i = 0; i < 1200; i++) {
      put.push(await client.put(`object ${i}`));
      clock.advance(1);
    }
    // As a version before the index left them; and an id whose record is gone.
    await redis.command("DEL", "{old:0}:order");
    await redis.command("HDEL", "{old:0}:version", "order");
    await redis.command("SADD", "{old:0}:sealed", "gone");
    assertEquals(ids(await pageAll(peer, 100)), put);
    assertEquals(await redis.command("ZCARD", "{old:0}:order"), 1200);
    assertEquals(await redis.command("SISMEMBER", "{old:0}:sealed", "gone"), 0);
    // Put since comes after them.
    const late = await client.put("late");
    assertEquals(ids(await peer.list()), [...put, late]);
  },
);

Deno.test(
  "pages on a Redis Cluster: every shard read in its part, one order for two peers",
  redisTestOptions,
  async () => {
    await using cluster = await startRedisCluster();
    const target = { url: cluster.url, namespace: "cpages" };
    await using a = new MemoryPeer({ leases: await store(target, "a"), node: "a" });
    await using b = new MemoryPeer({ leases: await store(target, "b"), node: "b" });
    const clients = [new Client(a), new Client(b)];
    const put: string[] = [];
    for (let i = 0; i < 800; i++) put.push(await clients[i % 2]!.put(`object ${i}`));
    const late: string[] = [];
    const seen = await pageAll([a, b], 37, async (seen) => {
      if (seen.length === 37 * 8) {
        const own = seen[seen.length - 1]!;
        await clients[put.indexOf(own) % 2]!.delete(own);
        await clients[700 % 2]!.delete(put[700]!);
        late.push(await clients[1]!.put("late"));
      }
    });
    assertEquals(ids(seen), [...put.filter((id) => id !== put[700]), ...late]);
    const now = ids(await pageAll(b, 1000));
    assertEquals(ids(await a.list()), now);
    assertEquals(now.length, 799);
  },
);

Deno.test(
  "a Redis Cluster with a master's clock behind: listings miss no put, cursors are checked",
  redisTestOptions,
  async (t) => {
    await using cluster = await startRedisCluster({ behindMs: [60_000, 0, 0] });
    const [slow, fast] = cluster.ports as [number, number];
    const seconds = async (port: number) =>
      Number((await cluster.cli(port, "TIME")).split("\n")[0]);
    assert((await seconds(fast)) - (await seconds(slow)) >= 59, "one master is a minute behind");

    await t.step("a listing misses no object put during it on any master", async () => {
      const target = { url: cluster.url, namespace: "skew" };
      await using a = new MemoryPeer({ leases: await store(target, "a"), node: "a" });
      await using b = new MemoryPeer({ leases: await store(target, "b"), node: "b" });
      const clients = [new Client(a), new Client(b)];
      const onSlow = await shardsOn(cluster, slow, "skew", 64);
      const put: string[] = [];
      for (let i = 0; i < 600; i++) put.push(await clients[i % 2]!.put(`object ${i}`));
      // The slow master's objects come first: the cursor soon passes its clock.
      const late: string[] = [];
      let n = 0;
      const lateId = (slowOne: boolean) => {
        while (onSlow.has(shardOf(`late ${n}`, 64)) !== slowOne) n++;
        return `late ${n++}`;
      };
      const cursors: string[] = [];
      const seen = await pageAll([a, b], 50, async (_, cursor) => {
        cursors.push(cursor);
        // One put on the slow master and one on another between every two pages.
        for (const slowOne of [true, false]) {
          late.push(await clients[late.length % 2]!.put("late", { id: lateId(slowOne) }));
        }
      });
      const listed = ids(seen);
      assertEquals(new Set(listed).size, listed.length, "no object twice");
      const missed = late.filter((id) => !listed.includes(id));
      assertEquals(missed, [], "every put during the listing is listed");
      assertEquals(listed.toSorted(), [...put, ...late].toSorted());
      // A place, the store's check and the id, whatever the shards behind: no position per shard.
      for (const cursor of cursors) assertCursorBound(cursor);
      // The pages brought the slow master's shards up to the others' places.
      const slowShard = [...onSlow][0]!;
      const raised = Number(
        await cluster.cli(slow, "HGET", `{skew:${slowShard}}:version`, "order"),
      );
      const [s, us] = (await cluster.cli(slow, "TIME")).trim().split("\n").map(Number);
      assert(raised > s! * 1e6 + us! + 50e6, `${raised} is the slow master's clock or behind`);
      // Both peers list one order, from the start or from a cursor of the other.
      const now = ids(await pageAll(a, 64));
      assertEquals(now.toSorted(), listed.toSorted());
      assertEquals(ids(await pageAll([b, a], 64)), now);
      assertEquals(ids(await b.list()), now);
    });

    await t.step(
      "every cursor of a version before is taken; one of other shards or another store refused",
      async () => {
        const target = { url: cluster.url, namespace: "old" };
        await using a = new MemoryPeer({ leases: await store(target, "a"), node: "a" });
        const client = new Client(a);
        const put: string[] = [];
        for (let i = 0; i < 300; i++) put.push(await client.put(`object ${i}`));
        const first = await a.listPage({ limit: 100 });
        const next = first.next!;
        assertCursorBound(next);
        const [order, id] = [next.slice(0, next.indexOf("-")), next.slice(next.indexOf(":") + 1)];
        const rest = put.filter((one) => !ids(first.objects).includes(one));
        const listedFrom = async (after: string) => ids(await pageAll(a, 100, undefined, after));
        // Each form a version before made: the place and id alone; a position per shard (all
        // at the place), without and with the check of namespace "old" of 64 shards ("45ti", as
        // 269ee7f computed it).
        for (const old of [`${order}:${id}`, `${order}~1s:${id}`, `${order}~1s_45ti:${id}`]) {
          assertEquals((await listedFrom(old)).toSorted(), rest.toSorted(), old);
        }
        // A position per shard is read as such: one before the last object listed of a shard
        // (not the cursor's) lists that object again, first.
        const shardOfId = shardOf(id, 64);
        const last = first.objects.findLast((info) => shardOf(info.id, 64) !== shardOfId)!.id;
        const shard = shardOf(last, 64);
        const place = Number(await cluster.cli(slow, "ZSCORE", `{old:${shard}}:order`, last));
        const lags = new Array(64).fill(0);
        lags[shard] = Number(order) - place + 1;
        const positions = formatCursor({ stage: 0, order: Number(order), id, lags, check: "45ti" });
        assertEquals(await listedFrom(positions), [last, ...await listedFrom(next)]);
        for (
          const after of [
            `${order}~3:${id}`, // Of 3 shards.
            "5~1s.6:x", // A lag past the place.
            `${order}~1s_td6t:${id}`, // Of namespace "skew".
          ]
        ) {
          const error = await assertRejects(() => a.listPage({ after }), InvalidArgumentError);
          assertEquals(error.code, "INVALID_ARGUMENT");
        }
        const refused = async (peer: MemoryPeer, after: string) => {
          const error = await assertRejects(() => peer.listPage({ after }), InvalidArgumentError);
          assertEquals(error.code, "INVALID_ARGUMENT");
          assert(error.message.includes("list from the start"), error.message);
        };
        // A cursor of a peer of another namespace with as many shards: its check tells.
        await using other = new MemoryPeer({
          leases: await store({ url: cluster.url, namespace: "other" }, "a"),
          node: "a",
        });
        await new Client(other).put("x");
        await new Client(other).put("y");
        await refused(a, (await other.listPage({ limit: 1 })).next!);
        // Another store with a namespace of the same name and shard count, each way.
        await using redis = await startRedis();
        await using single = new MemoryPeer({
          leases: await store({ url: redis.url, namespace: "old" }, "a", { shards: 64 }),
          node: "a",
        });
        await new Client(single).put("x");
        await new Client(single).put("y");
        await refused(single, next);
        await refused(a, (await single.listPage({ limit: 1 })).next!);
        // A shard that lost its state (a new epoch): the places before mean nothing there.
        await cluster.cli(slow, "HSET", `{old:${shard}}:version`, "epoch", "1");
        await refused(a, next);
        assertEquals(ids(await pageAll(a, 100)).toSorted(), put.toSorted());
      },
    );

    await t.step("a cursor does not grow with the shards behind: 1,024 shards", async () => {
      const target = { url: cluster.url, namespace: "wide" };
      await using a = new MemoryPeer({
        leases: await store(target, "a", { shards: 1024 }),
        node: "a",
      });
      const client = new Client(a);
      const put: string[] = [];
      for (let i = 0; i < 20; i++) put.push(await client.put(`object ${i}`));
      const cursors: string[] = [];
      const seen = await pageAll(a, 5, async (_, cursor) => {
        cursors.push(cursor);
        if (cursors.length <= 3) put.push(await client.put(`late ${cursors.length}`));
      });
      assertEquals(ids(seen).toSorted(), put.toSorted());
      // About 340 of its shards on the slow master: before, about 6 characters each.
      for (const cursor of cursors) assertCursorBound(cursor);
    });

    await t.step(
      "a page brings a shard behind up to its end: a put between the two is in it, one after later",
      async () => {
        // A namespace of two shards, shard 0 on the slow master, 1 on another.
        let namespace = "";
        for (let n = 0; namespace === ""; n++) {
          const on = await shardsOn(cluster, slow, `race${n}`, 2);
          if (on.has(0) && !on.has(1)) namespace = `race${n}`;
        }
        const leases = await store({ url: cluster.url, namespace }, "a", { shards: 2 });
        await using peer = new MemoryPeer({ leases, node: "a" });
        const client = new Client(peer);
        const onShard = (shard: number, name: string) => {
          let n = 0;
          while (shardOf(`${name} ${n}`, 2) !== shard) n++;
          return client.put(name, { id: `${name} ${n}` });
        };
        const early = [await onShard(0, "slow"), await onShard(1, "fast")];
        await using connection = {
          link: new RedisConnection({
            url: cluster.url,
            attempts: 3,
            backoff: { initial: 100, max: 1000 },
            commandTimeout: 10_000,
            log: undefined,
            scripts: Object.values(SCRIPTS),
            onReady: () => Promise.resolve(),
          }),
          [Symbol.asyncDispose]() {
            return this.link.close();
          },
        };
        await connection.link.open();
        // The slow shard was read to its end, a minute below the other's: before it is brought
        // up, a put lands on it, below the page's last place.
        let between: string | undefined;
        const exec: Exec = async (script, keys, args) => {
          if (script === SCRIPTS.catch_up && between === undefined) {
            between = await onShard(0, "between");
          }
          return connection.link.run(script, keys, args);
        };
        const pages = new ListAfter(namespace, "a", new ShardCalls(namespace, "a", 2), Date.now);
        const page = await pages.read(exec, undefined, 10);
        assert(between !== undefined, "the slow shard was brought up");
        assertEquals(ids(page.map((one) => one.info)), [early[0], between, early[1]]);
        // One put on it after the page comes after the page's last place.
        const after = await onShard(0, "after");
        const next = await pages.read(exec, cursorAfter(page.at(-1)!), 10);
        assertEquals(ids(next.map((one) => one.info)), [after]);
      },
    );
  },
);
