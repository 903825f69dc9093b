/**
 * The peers Packice ships: memory, file system, and memory over disk.
 *
 * @module
 */
export * from "./memory_peer.ts";
export * from "./fs_peer.ts";
export * from "./tiered_peer.ts";
