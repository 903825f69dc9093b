/**
 * Read-through of origin URLs with one download per cluster: claims in the
 * directory, the downloader's progress, downstream peers pulling pieces
 * while it downloads, and resumes with `Range`.
 *
 * @module
 */
export { originId } from "./origin_id.ts";
export { type OriginCounts } from "./origin_counts.ts";
export { ReadThrough, type ReadThroughCluster, type ReadThroughOptions } from "./read_through.ts";
export { ORIGIN_HEADER_PREFIX, originRoutes } from "./routes.ts";
export { responseOf } from "./object_response.ts";
