/**
 * The peers Packice ships: memory, file system, and later tiers.
 *
 * @module
 */
export * from "./memory_peer.ts";
export * from "./fs_peer.ts";
