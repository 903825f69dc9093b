import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { spawnReady } from "../helpers/ready_child.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { RedisLeaseStore } from "../../backends/redis/mod.ts";
import { Access, AlreadyExistsError, leaseRecord, newId, type ObjectInfo } from "../../core/mod.ts";

const CHILD = new URL("../helpers/redis_lease_child.ts", import.meta.url).pathname;
const LIVENESS_MS = 1000;
const TTL_MS = 1500;

function creating(id: string): ObjectInfo {
  return { id, state: "CREATING", size: 1, blobSizes: [1], meta: {}, createdAt: Date.now() };
}

Deno.test(
  "a SIGKILLed node's leases end: by Redis expiry, or when its liveness lapses",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const child = await spawnReady(
      ["run", "-A", CHILD, redis.url, "kill", "doomed", String(LIVENESS_MS), String(TTL_MS)],
      "ready\n",
      "The child",
    );
    await using survivor = await RedisLeaseStore.connect({
      url: redis.url,
      namespace: "kill",
      node: "survivor",
      liveness: 300,
    });
    const take = (id: string) =>
      survivor.create(creating(id), leaseRecord(newId(), id, Access.CREATE, undefined, Date.now()));

    // While the child lives, its objects are in the directory and its ids are taken.
    assertEquals((await survivor.stat("held"))?.holders, [
      { node: "doomed", address: "unix:///tmp/doomed.sock" },
    ]);
    await assertRejects(() => take("timed"), AlreadyExistsError);
    await assertRejects(() => take("untimed"), AlreadyExistsError);

    await child.stop("SIGKILL");

    // The CREATE lease without a TTL ends when the node's liveness key lapses.
    await eventually(
      () => take("untimed").then(() => true, () => false),
      "untimed is free",
      { timeout: 3 * LIVENESS_MS, interval: 25 },
    );
    // The one with a TTL ends by its Redis expiry, and its CREATING record with it.
    await eventually(
      async () => (await survivor.stat("timed")) === undefined,
      "timed expires",
      { timeout: 3 * TTL_MS, interval: 25 },
    );
    await take("timed");
    // The sealed object it held leaves lookups once the survivor's heartbeat reaps the dead node.
    await eventually(
      async () => (await survivor.stat("held")) === undefined,
      "held goes",
      { timeout: 3 * LIVENESS_MS, interval: 25 },
    );
    assertEquals((await survivor.list()).map((info) => info.id).sort(), ["timed", "untimed"]);
  },
);
