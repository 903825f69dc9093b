/**
 * Packice: a peer-to-peer cache of large immutable objects for Deno.
 *
 * A peer hands out leases on objects and never copies their bytes; clients
 * read and write the bytes directly, zero-copy where the peer is on the same
 * host.
 *
 * @example Put and get in process
 * ```ts
 * import { connect } from "@packice/packice";
 * await using client = await connect();
 * const id = await client.put(new TextEncoder().encode("hello"));
 * using handle = await client.get(id);
 * console.log(handle.bytes.length); // 5
 * ```
 *
 * @module
 */
export * from "./core/mod.ts";
export * from "./client/mod.ts";
export * from "./integrations/mod.ts";
export * from "./peers/mod.ts";
export { MemoryLeaseStore } from "./backends/memory_lease_store.ts";
export * from "./transport/uds/mod.ts";
export * from "./transport/http/mod.ts";
export * from "./backends/redis/mod.ts";
export * from "./backends/memory/mod.ts";
export * from "./backends/fs/mod.ts";
export * from "./p2p/mod.ts";
