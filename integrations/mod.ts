/**
 * Bridges from the Web APIs people already use to Packice: the Web Cache API
 * (`PackiceCacheStorage`, `PackiceCache`), a caching `fetch`, and files.
 *
 * @example A Web Cache over a private in-memory peer
 * ```ts
 * import { connect } from "@packice/packice";
 * import { PackiceCacheStorage } from "@packice/packice/integrations";
 * await using client = await connect();
 * const cache = await new PackiceCacheStorage(client).open("pages");
 * await cache.put("https://example.com/", new Response("<h1>hi</h1>"));
 * console.log((await cache.keys()).length); // 1
 * ```
 *
 * @module
 */
export * from "./cache.ts";
export * from "./cache_storage.ts";
export * from "./cached_fetch.ts";
export * from "./files.ts";
