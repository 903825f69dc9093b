/**
 * The contracts and lifecycle of Packice: blobs, objects, leases and peers.
 * No I/O lives here.
 *
 * @module
 */
export * from "./errors.ts";
export * from "./clock.ts";
export * from "./validate.ts";
export * from "./lease.ts";
export * from "./object.ts";
export type * from "./blob.ts";
export type * from "./blob_store.ts";
export type * from "./peer.ts";
export {
  cursorAfter,
  DEFAULT_PAGE,
  type ListCursor,
  type ListPage,
  listPageOf,
  type ListPageOptions,
  MAX_PAGE,
  type Placed,
} from "./list_page.ts";
export type * from "./status.ts";
export * from "./lease_store.ts";
export * from "./lifecycle.ts";
export * from "./mode.ts";
export * from "./metrics.ts";
export * from "./base_peer.ts";
