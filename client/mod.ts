/**
 * The client: `connect()` and the handles it gives.
 *
 * @module
 */
export * from "./client.ts";
export * from "./connect.ts";
export * from "./object_handle.ts";
export * from "./arriving_handle.ts";
export * from "./object_writer.ts";
