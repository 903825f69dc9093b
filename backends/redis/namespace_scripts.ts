/**
 * The scripts that read the namespace: objects by key, the indexes of a
 * shard, and a shard's epoch.
 *
 * @module
 */
import { type Script, script } from "./lua.ts";

/** The scripts that read the namespace, by operation. */
export const NAMESPACE_SCRIPTS = {
  /** KEYS[7..]: objects. Returns the fields of each, {} for one not in lookups. */
  get: script(
    "get",
    [],
    `
local out = {}
for i = 7, #KEYS do out[#out + 1] = redis.call('HGETALL', KEYS[i]) end
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
    ["forget_expired"],
    `
forget_expired()
if ARGV[3] == 'count' then
  return { redis.call('SCARD', SEALED), redis.call('ZCARD', CREATING) }
end
return { redis.call('SMEMBERS', SEALED), redis.call('ZRANGE', CREATING, 0, -1) }
`,
  ),

  /**
   * A page of the shard in put order (see `list_after.ts`). ARGV[3]: the
   * place to start at (inclusive, or after it with a '('; '-inf' for the
   * first); ARGV[4]: how many; ARGV[5]: what the keys of the shard's objects
   * start with; ARGV[6]: '1' to answer `{'UNINDEXED'}` instead when the
   * shard has objects that are not in put order (recorded by a version
   * before it, which the caller then adds with
   * {@link NAMESPACE_SCRIPTS.reindex}); ARGV[7]: '1' to learn, at the end
   * of the shard, where it ends. Returns `{objects, end, epoch}`: up to that
   * many objects, each `{order, id, fields}`, fewer only at the end of the
   * shard; there, when asked, the place every later put on the shard comes
   * after: its last place, first raised to its clock (as a put would do),
   * so a clock that goes back cannot place a put before it; and the shard's
   * epoch, which the cursors of the namespace are checked by. An entry
   * whose object is gone (a CREATING record Redis expired) is skipped and
   * removed.
   *
   * The object keys are not in KEYS, as they are known only here: they all
   * carry the shard's hash tag, so they are in the slot of the ones that
   * are, which is what Redis Cluster requires of a script.
   */
  page: script(
    "page",
    ["forget_expired", "read_order", "epoch"],
    `
forget_expired()
local want = tonumber(ARGV[4])
if ARGV[6] == '1' and
  redis.call('ZCARD', ORDER) < redis.call('SCARD', SEALED) + redis.call('ZCARD', CREATING) then
  return { 'UNINDEXED' }
end
local out = read_order(ARGV[3], '+inf', want, ARGV[5])
local ending = ''
if ARGV[7] == '1' and #out < want then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  ending = tonumber(redis.call('HGET', VERSION, 'order') or 0)
  if now > ending then
    ending = now
    redis.call('HSET', VERSION, 'order', ending)
  end
end
return { out, ending, epoch() }
`,
  ),

  /**
   * Brings a shard a page read to its end up to where the page ends (see
   * `list_after.ts`): raises the place every later put on it comes after to
   * at least ARGV[7], then returns the objects placed since the read, up to
   * where the page ends. ARGV[3]: after which place to read ('(' and where
   * the shard ended, or where the last call stopped); ARGV[4]: the page's
   * last place, the last to read; ARGV[5]: how many at most; ARGV[6]: what
   * the keys of the shard's objects start with; ARGV[7]: the place to raise
   * to, ARGV[4] or past it. Returns the objects, each `{order, id, fields}`.
   */
  catch_up: script(
    "catch_up",
    ["read_order"],
    `
if tonumber(ARGV[7]) > tonumber(redis.call('HGET', VERSION, 'order') or 0) then
  redis.call('HSET', VERSION, 'order', ARGV[7])
end
return read_order(ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6])
`,
  ),

  /**
   * Gives objects recorded without a place in put order (by a version
   * before it) the next places, in the order given. KEYS[7..]: the objects;
   * ARGV[3..]: their ids. One placed meanwhile keeps its place; the id of
   * one whose record is gone leaves the shard's lists.
   */
  reindex: script(
    "reindex",
    ["next_order"],
    `
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('EXISTS', KEYS[4 + i]) == 0 then
    redis.call('SREM', SEALED, id)
    redis.call('ZREM', CREATING, id)
    redis.call('ZREM', ORDER, id)
  elseif not redis.call('ZSCORE', ORDER, id) then
    redis.call('ZADD', ORDER, next_order(), id)
  end
end
return 'OK'
`,
  ),
} as const satisfies Record<string, Script>;
