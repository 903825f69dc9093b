/**
 * How a Lua script of the Redis lease store is built: the arguments it
 * starts with (a prelude), the helpers it uses and its body, with the SHA1
 * that EVALSHA names it by.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** A Lua script and its SHA1, for EVALSHA. */
export interface Script {
  /** The name, for messages. */
  readonly name: string;
  /** The Lua source. */
  readonly source: string;
  /** The SHA1 of the source, as Redis caches it. */
  readonly sha: string;
}

/**
 * The Lua helpers, each with the helpers it calls. A script includes only the
 * ones it uses: Redis runs the whole chunk on every call, and each helper it
 * defines costs a closure (a full set doubled the cost of a release).
 */
const HELPERS: Record<string, { readonly uses: readonly string[]; readonly code: string }> = {
  server_ms: {
    uses: [],
    code: `
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end`,
  },
  // The shard's epoch: the Redis time its state began, made on first use, so
  // a shard that lost its state (a master restarted empty) has a new one.
  epoch: {
    uses: [],
    code: `
local function epoch()
  local e = redis.call('HGET', VERSION, 'epoch')
  if not e then
    local t = redis.call('TIME')
    e = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('HSET', VERSION, 'epoch', e)
  end
  return e
end`,
  },
  // Gives an object a new version, \`<epoch>.<counter>\`, never reused even
  // after the shard lost its state: every change to its hash calls it.
  bump: {
    uses: ["epoch"],
    code: `
local function bump(o)
  redis.call('HSET', o, 'v', epoch() .. '.' .. redis.call('HINCRBY', VERSION, 'n', 1))
end`,
  },
  // A lease of this call's node as {object, access, expiresAt, timed}, or nil when the
  // store lacks it. lk: its key if it has a TTL; timed: '1' or '0' when the caller
  // knows which, to look in one place.
  get_lease: {
    uses: [],
    code: `
local function get_lease(lk, id, timed)
  if timed ~= '0' then
    local f = redis.call('HMGET', lk, 'object', 'access', 'expiresAt')
    if f[1] then
      return { key = lk, object = f[1], access = f[2], expiresAt = tonumber(f[3]), timed = true }
    end
  end
  if timed == '1' then return nil end
  local v = redis.call('HGET', U, id)
  if not v then return nil end
  local at = string.find(v, ':', 1, true)
  return { id = id, object = string.sub(v, at + 1), access = string.sub(v, 1, at - 1),
    timed = false }
end`,
  },
  // lifecycle.checkLive: a lease is live until its expiry.
  expired: {
    uses: [],
    code: `
local function expired(l)
  return l.expiresAt ~= nil and l.expiresAt <= NOW
end`,
  },
  put_lease: {
    uses: [],
    code: `
local function put_lease(lk, id, object, access, ttl, expires_at, px)
  if ttl == '' then
    redis.call('HSET', U, id, access .. ':' .. object)
  else
    redis.call('HSET', lk, 'object', object, 'access', access, 'node', NODE, 'ttl', ttl,
      'expiresAt', expires_at)
    redis.call('PEXPIRE', lk, px)
  end
end`,
  },
  drop_lease: {
    uses: [],
    code: `
local function drop_lease(l)
  if l.timed then redis.call('DEL', l.key) else redis.call('HDEL', U, l.id) end
end`,
  },
  // A new place in the shard's put order: the server's clock in microseconds,
  // or one past the last place when that is later (a clock gone back, or more
  // than one place a microsecond). Never given twice on a shard, and a shard
  // that lost its state starts past every place it gave before. Passed to
  // redis.call as a number, which Redis writes with 17 digits: never with
  // tostring or '..', which keep 14.
  next_order: {
    uses: [],
    code: `
local function next_order()
  local t = redis.call('TIME')
  local order = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('HGET', VERSION, 'order') or 0)
  if order <= last then order = last + 1 end
  redis.call('HSET', VERSION, 'order', order)
  return order
end`,
  },
  // Removes an object from lookups, from the holder index and from put order; returns its fields.
  remove_object: {
    uses: [],
    code: `
local function remove_object(o, id)
  local f = redis.call('HGETALL', o)
  for i = 1, #f, 2 do
    if string.byte(f[i], 1) == 64 then redis.call('ZREM', H, string.sub(f[i], 2) .. '\\n' .. id) end
  end
  redis.call('DEL', o)
  redis.call('SREM', SEALED, id)
  redis.call('ZREM', CREATING, id)
  redis.call('ZREM', ORDER, id)
  return f
end`,
  },
  // Forgets the shard's CREATING objects whose record expired (Redis expired
  // their keys with their CREATE leases): out of lookups and of put order.
  forget_expired: {
    uses: ["server_ms"],
    code: `
local function forget_expired()
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', CREATING, '-inf', server_ms())) do
    redis.call('ZREM', CREATING, id)
    redis.call('ZREM', ORDER, id)
  end
end`,
  },
  // Up to want objects of the shard's put order from place from to place to
  // (ZRANGE BYSCORE bounds), each {place, id, fields}; fewer only when no
  // more are there. An entry whose object is gone (a CREATING record Redis
  // expired) is skipped and removed.
  read_order: {
    uses: [],
    code: `
local function read_order(from, to, want, prefix)
  local out = {}
  while #out < want do
    local batch = redis.call('ZRANGE', ORDER, from, to, 'BYSCORE', 'LIMIT', 0, want - #out,
      'WITHSCORES')
    if #batch == 0 then break end
    for i = 1, #batch, 2 do
      local id = batch[i]
      local f = redis.call('HGETALL', prefix .. id)
      if #f == 0 then
        redis.call('ZREM', ORDER, id)
        redis.call('SREM', SEALED, id)
        redis.call('ZREM', CREATING, id)
      else
        out[#out + 1] = { batch[i + 1], id, f }
      end
    end
    from = '(' .. batch[#batch]
  end
  return out
end`,
  },
  // Makes the object in key o CREATING under the lease lid, gives it the next
  // place in put order, and registers its expiry: never without a TTL, else px
  // milliseconds from the server's clock.
  start_creating: {
    uses: ["bump", "server_ms", "next_order"],
    code: `
local function start_creating(o, id, lid, size, blobs, meta, created_at, cexp, ttl, px)
  redis.call('HSET', o, 'state', 'CREATING', 'size', size, 'blobs', blobs, 'meta', meta,
    'createdAt', created_at, 'creator', lid, 'cnode', NODE, 'cexp', cexp)
  bump(o)
  redis.call('ZADD', ORDER, next_order(), id)
  if ttl == '' then
    redis.call('ZADD', CREATING, '+inf', id)
  else
    redis.call('PEXPIRE', o, px)
    redis.call('ZADD', CREATING, server_ms() + tonumber(px), id)
  end
end`,
  },
  // Ends a lease on the object in key o. lifecycle.endRemovesObject: ending the
  // CREATE lease of an unsealed object abandons the object. Returns the removed
  // object's fields, or {}.
  end_lease: {
    uses: ["drop_lease", "remove_object"],
    code: `
local function end_lease(o, id, l)
  drop_lease(l)
  if l.access ~= 'CREATE' then return {} end
  local cur = redis.call('HMGET', o, 'state', 'creator')
  if cur[1] == 'CREATING' and cur[2] == id then return remove_object(o, l.object) end
  return {}
end`,
  },
};

/** Builds a script: the common arguments, the helpers it uses (after theirs), then its body. */
export function script(
  name: string,
  uses: readonly string[],
  body: string,
  prelude = SHARD,
): Script {
  const included: string[] = [];
  const include = (helper: string) => {
    if (included.includes(helper)) return;
    HELPERS[helper]!.uses.forEach(include);
    included.push(helper);
  };
  uses.forEach(include);
  const source = [
    prelude,
    ...included.map((helper) => HELPERS[helper]!.code.trim()),
    body.trim(),
  ].join("\n");
  return { name, source, sha: createHash("sha1").update(source).digest("hex") };
}

/**
 * The arguments every shard script starts with: `ARGV[1]` the caller's clock
 * in milliseconds (expiry is decided by it; Redis expiries are the backstop),
 * `ARGV[2]` the caller's node id, and the shard's own keys in `KEYS[1..6]`.
 */
export const SHARD = "local NOW, NODE = tonumber(ARGV[1]), ARGV[2]\n" +
  "local U, H, SEALED, CREATING, VERSION, ORDER = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], " +
  "KEYS[6]";
/** The arguments of node scripts: `ARGV[2]` the node, `KEYS[1..3]` the liveness keys. */
export const NODES = "local NODE = ARGV[2]\nlocal ALIVE, INC, NODES = KEYS[1], KEYS[2], KEYS[3]";
