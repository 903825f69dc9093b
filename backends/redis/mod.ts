/**
 * Leases and the object directory in Redis, shared by many daemons: see
 * {@link RedisLeaseStore}.
 *
 * @example Keep a peer's leases in Redis
 * ```ts ignore
 * import { MemoryPeer, RedisLeaseStore } from "@packice/packice";
 * const leases = await RedisLeaseStore.connect({ url: "redis://127.0.0.1:6379/0" });
 * await using peer = new MemoryPeer({ leases, node: leases.node });
 * ```
 *
 * @module
 */
export { RedisLeaseStore } from "./redis_lease_store.ts";
export type { RedisLeaseStoreOptions } from "./redis_options.ts";
export type { RedisBackoff, RedisLogger } from "./connection.ts";
