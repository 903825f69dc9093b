import type { Client } from "../client/client.ts";
import { PackiceCache } from "./cache.ts";
import type { CacheQueryOptions } from "./cache_entry.ts";
import { IndexChain } from "./index_chain.ts";

/** Options of {@link PackiceCacheStorage}. */
export interface PackiceCacheStorageOptions {
  /**
   * Separates sets of caches on one peer: storages with the same namespace
   * see the same caches. Letters, digits, `_` and `-`, at most 64 of them;
   * `"default"` when absent.
   */
  readonly namespace?: string;
}

/** Options of {@link PackiceCacheStorage.match}. */
export interface MultiCacheQueryOptions extends CacheQueryOptions {
  /** Search only the cache of this name. */
  readonly cacheName?: string;
}

interface StorageIndex {
  readonly caches: { readonly name: string; readonly uid: string }[];
}

/**
 * The Web Cache API's `CacheStorage` (the `caches` global) over a Packice
 * client: named {@link PackiceCache}s that every process using the same peer
 * and namespace shares.
 *
 * @example Share a cache through a daemon
 * ```ts ignore
 * import { connect, PackiceCacheStorage } from "@packice/packice";
 * await using client = await connect("/tmp/packice.sock");
 * const caches = new PackiceCacheStorage(client);
 * const cache = await caches.open("models");
 * const response = await cache.match("https://example.com/model.bin");
 * ```
 *
 * @example In one process
 * ```ts
 * import { connect, PackiceCacheStorage } from "@packice/packice";
 * await using client = await connect();
 * const caches = new PackiceCacheStorage(client);
 * await caches.open("v1");
 * console.log(await caches.keys()); // ["v1"]
 * console.log(await caches.delete("v1")); // true
 * ```
 */
export class PackiceCacheStorage {
  readonly #client: Client;
  readonly #index: IndexChain<StorageIndex>;
  readonly #opened = new Map<string, PackiceCache>();

  /**
   * A storage of caches on the peer behind `client`.
   *
   * @param client The client of the peer that holds the caches.
   * @param options The namespace.
   * @throws {TypeError} When the namespace has other characters or is too long.
   */
  constructor(client: Client, options: PackiceCacheStorageOptions = {}) {
    const namespace = options.namespace ?? "default";
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(namespace)) {
      throw new TypeError(
        `Invalid namespace: expected 1 to 64 letters, digits, "_" or "-": ${
          JSON.stringify(namespace)
        }`,
      );
    }
    this.#client = client;
    this.#index = new IndexChain(client, `packice-caches.${namespace}.`, () => ({ caches: [] }));
  }

  /**
   * The cache of this name, created if there is none.
   *
   * @param cacheName Any string.
   */
  async open(cacheName: string): Promise<PackiceCache> {
    const fresh = crypto.randomUUID();
    const uid = await this.#index.update((current) => {
      const found = current.caches.find((cache) => cache.name === cacheName);
      if (found !== undefined) return { result: found.uid };
      return {
        value: { caches: [...current.caches, { name: cacheName, uid: fresh }] },
        result: fresh,
      };
    });
    return this.#cache(uid);
  }

  /** Whether a cache of this name exists. */
  async has(cacheName: string): Promise<boolean> {
    const { value } = await this.#index.read();
    return value.caches.some((cache) => cache.name === cacheName);
  }

  /**
   * Deletes the cache of this name and its entries.
   *
   * @returns Whether there was one.
   */
  async delete(cacheName: string): Promise<boolean> {
    const uid = await this.#index.update((current) => {
      const found = current.caches.find((cache) => cache.name === cacheName);
      if (found === undefined) return { result: undefined };
      const caches = current.caches.filter((cache) => cache !== found);
      return { value: { caches }, result: found.uid };
    });
    if (uid === undefined) return false;
    await this.#cache(uid).destroy();
    this.#opened.delete(uid);
    return true;
  }

  /** The names of the caches, in the order they were created. */
  async keys(): Promise<string[]> {
    const { value } = await this.#index.read();
    return value.caches.map((cache) => cache.name);
  }

  /**
   * The first response that matches in the named cache, or in any cache in
   * creation order.
   */
  async match(
    request: RequestInfo | URL,
    options: MultiCacheQueryOptions = {},
  ): Promise<Response | undefined> {
    const { value } = await this.#index.read();
    for (const { name, uid } of value.caches) {
      if (options.cacheName !== undefined && name !== options.cacheName) continue;
      const response = await this.#cache(uid).match(request, options);
      if (response !== undefined) return response;
    }
    return undefined;
  }

  #cache(uid: string): PackiceCache {
    let cache = this.#opened.get(uid);
    if (cache === undefined) {
      cache = new PackiceCache(this.#client, `packice-cache.${uid}.`);
      this.#opened.set(uid, cache);
    }
    return cache;
  }
}
