/**
 * The Redis lease store and directory on a real three-master Redis Cluster:
 * the cases every Redis lease store keeps, objects spread over every master,
 * and daemons sharing a namespace through `--redis redis+cluster://...`.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";
import { LEASE_STORE_CASES, store } from "../../helpers/lease_store_cases.ts";
import { spawnReady } from "../../helpers/ready_child.ts";
import { startRedisCluster } from "../../helpers/redis_cluster.ts";
import { redisTestOptions } from "../../helpers/redis_server.ts";
import { RedisLeaseStore } from "../../../backends/redis/mod.ts";
import { connect, MemoryPeer, NotFoundError, StoreUnavailableError } from "../../../mod.ts";

const CLI = new URL("../../../cli.ts", import.meta.url).pathname;

Deno.test("the Redis lease store on a three-master Redis Cluster", redisTestOptions, async (t) => {
  await using cluster = await startRedisCluster();
  let namespaces = 0;
  for (const [name, run] of Object.entries(LEASE_STORE_CASES)) {
    await t.step(name, () => run({ url: cluster.url, namespace: `case${namespaces++}` }));
  }

  await t.step("objects spread over every master; list and counts see them all", async () => {
    const target = { url: cluster.url, namespace: "spread" };
    await using a = new MemoryPeer({ leases: await store(target, "a"), node: "a" });
    await using b = new MemoryPeer({ leases: await store(target, "b"), node: "b" });
    await using client = await connect(a);
    const ids = Array.from({ length: 40 }, (_, i) => `object-${i}`);
    for (const id of ids) await client.put(`bytes of ${id}`, { id });
    for (const port of cluster.ports) {
      const keys = await cluster.cli(port, "--scan", "--pattern", "{spread:*}:o:*");
      assert(keys.trim().length > 0, `master ${port} holds objects of the namespace`);
    }
    assertEquals((await b.list()).map((info) => info.id).sort(), ids.toSorted());
    assertEquals((await b.stats()).objects, 40);
    assertEquals((await b.stat("object-7")).holders, [{ node: "a" }]);
    using handle = await client.get("object-7");
    assertEquals(new TextDecoder().decode(handle.bytes), "bytes of object-7");
    await client.delete("object-7");
    assertEquals(await b.has("object-7"), false);
  });

  await t.step("a node that leaves takes its holdings and leases out of every shard", async () => {
    const target = { url: cluster.url, namespace: "leave" };
    await using b = await store(target, "b");
    const a = new MemoryPeer({ leases: await store(target, "a"), node: "a" });
    const client = await connect(a);
    for (let i = 0; i < 20; i++) await client.put(`x${i}`, { id: `x${i}` });
    const open = await client.get("x3");
    await client.create(8, { id: "unfinished" });
    assertEquals((await b.counts()).objects, 21);
    open.close();
    await client.close();
    await a.close();
    assertEquals(await b.list(), []);
    for (const port of cluster.ports) {
      assertEquals(await cluster.cli(port, "--scan", "--pattern", "{leave:*}:o:*"), "");
    }
  });

  await t.step("a master going away: held reads go on, the node registers again", async () => {
    const target = { url: cluster.url, namespace: "away" };
    const leases = await store(target, "a", {
      liveness: 600,
      backoff: { initial: 20, max: 200 },
      log: { info: () => {}, warn: () => {} },
    });
    await using a = new MemoryPeer({ leases, node: "a" });
    await using client = await connect(a);
    const ids = Array.from({ length: 20 }, (_, i) => `held-${i}`);
    for (const id of ids) await client.put(`bytes of ${id}`, { id });
    let reads = 0;
    let slowest = 0;
    const failures: string[] = [];
    let reading = true;
    const stream = (async () => {
      while (reading) {
        const id = ids[reads++ % ids.length]!;
        const started = performance.now();
        try {
          using handle = await client.get(id);
          if (new TextDecoder().decode(handle.bytes) !== `bytes of ${id}`) failures.push(id);
        } catch (error) {
          failures.push(`${id}: ${(error as Error).message}`);
        }
        slowest = Math.max(slowest, performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const port = cluster.ports[1]!;
    await cluster.stop(port);
    await eventually(() => !leases.available, "the store sees the cluster go");
    await assertRejects(() => client.list(), StoreUnavailableError);
    await cluster.restart(port);
    await eventually(() => leases.available, "the store is back", { timeout: 10_000 });
    reading = false;
    await stream;
    assertEquals(failures, []);
    assert(slowest < 1000, `no read waited for Redis: the slowest took ${slowest} ms`);
    assertEquals((await client.list()).map((info) => info.id).sort(), ids.toSorted());
  });

  await t.step(
    "a master wiped while node liveness stays up: its objects are registered again",
    async () => {
      const target = { url: cluster.url, namespace: "partial" };
      const quiet = { info: () => {}, warn: () => {} };
      await using observer = await store(target, "observer");
      const leases = await store(target, "a", { liveness: 600, log: quiet });
      await using a = new MemoryPeer({ leases, node: "a" });
      await using client = await connect(a);
      const ids = Array.from({ length: 30 }, (_, i) => `partial-${i}`);
      for (const id of ids) await client.put(`bytes of ${id}`, { id });
      // A master with objects of the namespace, but not the slot of node liveness.
      const slot = (await cluster.cli(cluster.ports[0]!, "CLUSTER", "KEYSLOT", "{partial}")).trim();
      let wiped: number | undefined;
      for (const port of cluster.ports) {
        const liveness = Number(await cluster.cli(port, "CLUSTER", "COUNTKEYSINSLOT", slot));
        const objects = await cluster.cli(port, "--scan", "--pattern", "{partial:*}:o:*");
        if (liveness === 0 && objects.trim() !== "") wiped = port;
      }
      assert(wiped !== undefined, "a master holds objects but not node liveness");
      await cluster.cli(wiped, "FLUSHALL");
      assert((await observer.list()).length < ids.length, "the wipe lost objects");
      await eventually(
        async () => (await observer.list()).length === ids.length,
        "a registers the lost objects again",
      );
      assertEquals((await observer.stat("partial-3"))?.holders, [{ node: "a" }]);
      for (const id of ids) {
        using handle = await client.get(id);
        assertEquals(new TextDecoder().decode(handle.bytes), `bytes of ${id}`);
      }
    },
  );

  await t.step("daemons with --redis redis+cluster:// share one namespace", async () => {
    const dir = await Deno.makeTempDir({ prefix: "packice-cluster-" });
    const serve = (node: string) =>
      spawnReady(
        ["run", "-A", CLI, "serve", "--impl", "mem", "--capacity", "16MiB"]
          .concat(["--socket", `${dir}/${node}.sock`, "--redis", cluster.url])
          .concat(["--namespace", "daemons", "--node", node, "--log-level", "error"]),
        "Packice listening on",
        `Daemon ${node}`,
      );
    const one = await serve("one");
    const two = await serve("two");
    try {
      await using first = await connect(`${dir}/one.sock`);
      await using second = await connect(`${dir}/two.sock`);
      await first.put("made on one", { id: "shared" });
      assertEquals((await second.list()).map((info) => [info.id, info.holders]), [
        ["shared", [{ node: "one", address: `unix://${dir}/one.sock` }]],
      ]);
      await assertRejects(() => second.get("shared"), NotFoundError, "not held by this peer");
      using handle = await first.get("shared");
      assertEquals(new TextDecoder().decode(handle.bytes), "made on one");
    } finally {
      await one.stop("SIGTERM");
      await two.stop("SIGTERM");
      await Deno.remove(dir, { recursive: true });
    }
    await using observer = await RedisLeaseStore.connect({
      url: cluster.url,
      namespace: "daemons",
    });
    assertEquals(await observer.list(), []);
  });
});
