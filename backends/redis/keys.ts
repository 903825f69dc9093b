/**
 * Where the Redis lease store keeps things: the keys, by hash tag.
 *
 * Redis Cluster: objects are spread over `shards` hash slots by their id
 * ({@link shardOf}); each shard keeps its objects and the indexes over them
 * under one hash tag `{ns:s}`, so no script spans two slots. Node liveness
 * lives under a tag of its own, `{ns}`.
 *
 * A shard's own keys (see {@link shardKeys}), which shard scripts take first:
 * - `{ns:s}:leases:<node>`: the node's leases without a TTL on the shard, a
 *   hash lease id to `ACCESS:objectId`. They live as long as their node is
 *   alive.
 * - `{ns:s}:h`: holders, a sorted set of `node\nobject`.
 * - `{ns:s}:sealed`: the ids of sealed objects.
 * - `{ns:s}:creating`: ids of objects being created, scored by when their
 *   record expires in Redis time.
 * - `{ns:s}:version`: where object versions come from, a hash: the shard's
 *   `epoch` (new when the shard lost its state) and a counter `n`; and the
 *   last place in put order it gave, `order` (raised to the server's clock
 *   by a page that reads the shard to its end: see `list_after.ts`).
 * - `{ns:s}:order`: every object in lookups (sealed or being created), a
 *   sorted set scored by its place in put order: microseconds of the
 *   server's clock when it was put, unique on the shard (see
 *   `list_after.ts`), so a cursor means the same on every node.
 *
 * Then, on the shard of their object: `{ns:s}:o:<id>`, an object, a hash:
 * `state`, `size`, `blobs`, `meta`, `createdAt`, `sealedAt`, `digest`,
 * `tier`, `creator` (the CREATE lease), `cnode` (its node), `cexp` (its
 * expiry, empty without a TTL), `v` (a version, new on every change, so a
 * reader's cached copy is checked without sending the hash), and one
 * `@<node>` field per holder, valued with the address that node serves on;
 * and `{ns:s}:l:<lease>`, a lease with a TTL, a hash with a Redis expiry.
 *
 * Node liveness: `{ns}:alive` (node to the Redis time its liveness ends),
 * `{ns}:inc` (node to its incarnation) and `{ns}:nodes` (node to address).
 *
 * @module
 */

/** The hash tag of shard `shard` of namespace `namespace`. */
function shardTag(namespace: string, shard: number): string {
  return `{${namespace}:${shard}}`;
}

/** The fixed keys of a shard for `node`, as every shard script takes them first. */
export function shardKeys(namespace: string, shard: number, node: string): string[] {
  const tag = shardTag(namespace, shard);
  return [
    nodeLeasesKey(namespace, shard, node),
    `${tag}:h`,
    `${tag}:sealed`,
    `${tag}:creating`,
    `${tag}:version`,
    `${tag}:order`,
  ];
}

/** The key of a node's leases without a TTL on a shard. */
export function nodeLeasesKey(namespace: string, shard: number, node: string): string {
  return `${shardTag(namespace, shard)}:leases:${node}`;
}

/** The key of an object's hash. */
export function objectKey(namespace: string, shard: number, id: string): string {
  return `${objectPrefix(namespace, shard)}${id}`;
}

/** What the keys of a shard's objects start with, before the object id. */
export function objectPrefix(namespace: string, shard: number): string {
  return `${shardTag(namespace, shard)}:o:`;
}

/** The key a lease with a TTL has, on the shard of its object. */
export function leaseKey(namespace: string, shard: number, lease: string): string {
  return `${shardTag(namespace, shard)}:l:${lease}`;
}

/** The keys of node liveness, as node scripts take them. */
export function nodeKeys(namespace: string): string[] {
  return [`{${namespace}}:alive`, `{${namespace}}:inc`, `{${namespace}}:nodes`];
}

const encoder = new TextEncoder();

/** The shard of an object id: FNV-1a of its UTF-8 bytes, modulo `shards`. */
export function shardOf(id: string, shards: number): number {
  if (shards === 1) return 0;
  let hash = 0x811c9dc5;
  // An ASCII id is its own UTF-8 bytes: hashed without encoding it.
  for (let i = 0; i < id.length; i++) {
    const code = id.charCodeAt(i);
    if (code >= 0x80) return utf8ShardOf(id, shards);
    hash = Math.imul(hash ^ code, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

function utf8ShardOf(id: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(id)) hash = Math.imul(hash ^ byte, 0x01000193);
  return (hash >>> 0) % shards;
}
