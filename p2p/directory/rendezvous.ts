/**
 * Rendezvous (highest random weight) hashing: the owners of a key are the
 * members with the highest hash of (member, key). When a member joins or
 * leaves, only the keys it wins or held move: about 1/n of them.
 *
 * @module
 */

/** A 53-bit hash of a string (cyrb53): fast, well mixed, not cryptographic. */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The weight of `node` for `key`. */
export function weight(node: string, key: string): number {
  return hash53(`${node}\u0000${key}`);
}

/**
 * The `count` members of highest weight for `key`, highest first (ties by node id).
 *
 * @example
 * ```ts
 * import { owners } from "./rendezvous.ts";
 * const chosen = owners("model.bin", ["a", "b", "c"], 2);
 * console.log(chosen.length); // 2
 * ```
 */
export function owners(key: string, nodes: readonly string[], count: number): string[] {
  return nodes
    .map((node) => ({ node, w: weight(node, key) }))
    .sort((a, b) => b.w - a.w || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
    .slice(0, count)
    .map(({ node }) => node);
}
