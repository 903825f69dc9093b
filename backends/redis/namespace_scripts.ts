/**
 * The scripts that read the namespace: objects by key, the indexes of a
 * shard, and a shard's epoch.
 *
 * @module
 */
import { type Script, script } from "./lua.ts";

/** The scripts that read the namespace, by operation. */
export const NAMESPACE_SCRIPTS = {
  /** KEYS[6..]: objects. Returns the fields of each, {} for one not in lookups. */
  get: script(
    "get",
    [],
    `
local out = {}
for i = 6, #KEYS do out[#out + 1] = redis.call('HGETALL', KEYS[i]) end
return out
`,
  ),

  /** Returns the shard's epoch: another one than before means the shard lost its state. */
  epoch: script("epoch", ["epoch"], "return epoch()"),

  /**
   * ARGV[3]: 'count' or 'list'. Forgets the ids of the shard's CREATING
   * objects whose record expired, then returns the counts, or the ids, of
   * sealed and of creating objects.
   */
  index: script(
    "index",
    ["server_ms"],
    `
redis.call('ZREMRANGEBYSCORE', CREATING, '-inf', server_ms())
if ARGV[3] == 'count' then
  return { redis.call('SCARD', SEALED), redis.call('ZCARD', CREATING) }
end
return { redis.call('SMEMBERS', SEALED), redis.call('ZRANGE', CREATING, 0, -1) }
`,
  ),
} as const satisfies Record<string, Script>;
