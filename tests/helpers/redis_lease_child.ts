/**
 * A test-only daemon stand-in for tests/redis_kill_test.ts: joins a Redis
 * namespace, takes leases, prints `ready` and waits to be killed.
 *
 * Usage: deno run -A redis_lease_child.ts URL NAMESPACE NODE LIVENESS_MS TTL_MS
 *
 * It leaves behind, under its node id:
 * - `timed`: an object being created under a CREATE lease with a TTL of TTL_MS;
 * - `untimed`: an object being created under a CREATE lease without a TTL;
 * - `held`: a sealed object it holds, with an open READ lease without a TTL.
 */
import { RedisLeaseStore } from "../../backends/redis/mod.ts";
import { Access, leaseRecord, newId, type ObjectInfo } from "../../core/mod.ts";

const [url, namespace, node, liveness, ttl] = Deno.args;
const store = await RedisLeaseStore.connect({
  url: url!,
  namespace: namespace!,
  node: node!,
  address: `unix:///tmp/${node}.sock`,
  liveness: Number(liveness),
});
const now = Date.now();
const creating = (id: string): ObjectInfo => ({
  id,
  state: "CREATING",
  size: 1,
  blobSizes: [1],
  meta: {},
  createdAt: now,
});
await store.create(
  creating("timed"),
  leaseRecord(newId(), "timed", Access.CREATE, Number(ttl), now),
);
await store.create(
  creating("untimed"),
  leaseRecord(newId(), "untimed", Access.CREATE, undefined, now),
);
const made = leaseRecord(newId(), "held", Access.CREATE, undefined, now);
await store.create(creating("held"), made);
await store.seal(made.id, { sealedAt: now });
await store.release(made.id);
await store.grant("held", leaseRecord(newId(), "held", Access.READ, undefined, now));
console.log("ready");
// Wait for SIGKILL; the Redis connection keeps the process alive.
await new Promise(() => {});
