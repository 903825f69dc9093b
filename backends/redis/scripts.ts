/**
 * The Lua scripts of the Redis lease store: each state change is one script,
 * so it is atomic and daemons racing on one id always agree. They apply the
 * rules of `core/lifecycle.ts`; a refusal returns its error code, and the
 * TypeScript side rebuilds the error by running the same lifecycle check on
 * the state the script saw.
 *
 * Replies are flat arrays: a status (`OK` or an error code), then the fields
 * of the object the script saw or removed, if any.
 *
 * Every script takes `ARGV[1]` the key prefix, `ARGV[2]` the caller's clock
 * in milliseconds (expiry is decided by it; Redis expiries are the backstop),
 * and `ARGV[3]` the caller's node id. Keys are built inside the scripts from
 * the prefix, so the store needs a standalone Redis (not a cluster).
 *
 * Keys, under the prefix:
 * - `o:<id>`: an object, a hash: `state`, `size`, `blobs`, `meta`,
 *   `createdAt`, `sealedAt`, `digest`, `tier`, `creator` (the CREATE lease),
 *   `cnode` (its node), `v` (a version from the `version` counter, new on
 *   every change, so a reader's cached copy is checked without sending the
 *   hash), and one `@<node>` field per holder, valued with the address that
 *   node serves on. A CREATING object expires with a CREATE lease that has a
 *   TTL; seal persists it.
 * - `l:<lease>`: a lease with a TTL, a hash with a Redis expiry.
 * - `leases:<node>`: the node's leases without a TTL, a hash lease id to
 *   `ACCESS:objectId`. They live as long as the node's liveness key.
 * - `alive:<node>`: the node's liveness key, refreshed by its heartbeat.
 * - `held:<node>`: the ids of the sealed objects the node holds.
 * - `nodes`: every node with state here, a hash node to address.
 * - `sealed`: the ids of sealed objects; `creating`: the ids of objects being
 *   created, scored by when their record expires in Redis time.
 * - `version`: the counter object versions come from.
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
  // Gives an object a new version: every change to its hash calls it.
  bump: {
    uses: [],
    code: `
local function bump(o)
  redis.call('HSET', o, 'v', redis.call('INCR', P .. 'version'))
end`,
  },
  // A lease of `node` as {object, access, expiresAt, timed}, or nil when the store lacks it.
  // `timed`: '1' or '0' when the caller knows whether it has a TTL, to look in one place.
  get_lease: {
    uses: [],
    code: `
local function get_lease(id, node, timed)
  if timed ~= '0' then
    local f = redis.call('HMGET', P .. 'l:' .. id, 'object', 'access', 'expiresAt')
    if f[1] then
      return { object = f[1], access = f[2], expiresAt = tonumber(f[3]), timed = true }
    end
  end
  if timed == '1' then return nil end
  local v = redis.call('HGET', P .. 'leases:' .. node, id)
  if not v then return nil end
  local at = string.find(v, ':', 1, true)
  return { object = string.sub(v, at + 1), access = string.sub(v, 1, at - 1), timed = false }
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
local function put_lease(id, object, access, ttl, expires_at, px)
  if ttl == '' then
    redis.call('HSET', P .. 'leases:' .. NODE, id, access .. ':' .. object)
  else
    local k = P .. 'l:' .. id
    redis.call('HSET', k, 'object', object, 'access', access, 'node', NODE, 'ttl', ttl,
      'expiresAt', expires_at)
    redis.call('PEXPIRE', k, px)
  end
end`,
  },
  drop_lease: {
    uses: [],
    code: `
local function drop_lease(id, node, l)
  if l.timed then
    redis.call('DEL', P .. 'l:' .. id)
  else
    redis.call('HDEL', P .. 'leases:' .. node, id)
  end
end`,
  },
  // Removes an object from lookups and from its holders' sets; returns its fields.
  remove_object: {
    uses: [],
    code: `
local function remove_object(id)
  local f = redis.call('HGETALL', P .. 'o:' .. id)
  for i = 1, #f, 2 do
    if string.byte(f[i], 1) == 64 then redis.call('SREM', P .. 'held:' .. string.sub(f[i], 2), id) end
  end
  redis.call('DEL', P .. 'o:' .. id)
  redis.call('SREM', P .. 'sealed', id)
  redis.call('ZREM', P .. 'creating', id)
  return f
end`,
  },
  // Ends a lease. lifecycle.endRemovesObject: ending the CREATE lease of an
  // unsealed object abandons the object. Returns the removed object's fields, or {}.
  end_lease: {
    uses: ["drop_lease", "remove_object"],
    code: `
local function end_lease(id, node, l)
  drop_lease(id, node, l)
  if l.access ~= 'CREATE' then return {} end
  local o = redis.call('HMGET', P .. 'o:' .. l.object, 'state', 'creator')
  if o[1] == 'CREATING' and o[2] == id then return remove_object(l.object) end
  return {}
end`,
  },
  // Whether the CREATE lease that made an object has ended: released, past its
  // expiry, or without a TTL and of a node whose liveness key is gone.
  abandoned: {
    uses: ["get_lease", "expired"],
    code: `
local function abandoned(creator, cnode)
  local l = get_lease(creator, cnode)
  if not l then return true end
  if l.timed then return expired(l) end
  return redis.call('EXISTS', P .. 'alive:' .. cnode) == 0
end`,
  },
};

/** Builds a script: the common arguments, the helpers it uses (after theirs), then its body. */
function script(name: string, uses: readonly string[], body: string): Script {
  const included: string[] = [];
  const include = (helper: string) => {
    if (included.includes(helper)) return;
    HELPERS[helper]!.uses.forEach(include);
    included.push(helper);
  };
  uses.forEach(include);
  const source = [
    "local P, NOW, NODE = ARGV[1], tonumber(ARGV[2]), ARGV[3]",
    ...included.map((helper) => HELPERS[helper]!.code.trim()),
    body.trim(),
  ].join("\n");
  return { name, source, sha: createHash("sha1").update(source).digest("hex") };
}

/** The scripts, by operation. */
export const SCRIPTS = {
  /**
   * ARGV[4..]: objectId, leaseId, ttl, expiresAt, px, size, blobs, meta, createdAt.
   * An object still CREATING whose CREATE lease has ended is replaced.
   */
  create: script(
    "create",
    ["abandoned", "get_lease", "drop_lease", "remove_object", "put_lease", "server_ms", "bump"],
    `
local id, lid, ttl, px = ARGV[4], ARGV[5], ARGV[6], ARGV[8]
local o = P .. 'o:' .. id
local cur = redis.call('HMGET', o, 'state', 'creator', 'cnode')
if cur[1] then
  if cur[1] ~= 'CREATING' or not abandoned(cur[2], cur[3]) then return { 'ALREADY_EXISTS' } end
  local old = get_lease(cur[2], cur[3])
  if old then drop_lease(cur[2], cur[3], old) end
  remove_object(id)
end
redis.call('HSET', o, 'state', 'CREATING', 'size', ARGV[9], 'blobs', ARGV[10], 'meta', ARGV[11],
  'createdAt', ARGV[12], 'creator', lid, 'cnode', NODE)
bump(o)
put_lease(lid, id, 'CREATE', ttl, ARGV[7], px)
if ttl == '' then
  redis.call('ZADD', P .. 'creating', '+inf', id)
else
  redis.call('PEXPIRE', o, px)
  redis.call('ZADD', P .. 'creating', server_ms() + tonumber(px), id)
end
return { 'OK' }
`,
  ),

  /**
   * ARGV[4..]: objectId, leaseId, access (READ or WRITE), ttl, expiresAt, px,
   * and the version of the caller's copy of the object ('' for none): the
   * fields come back only when that copy is stale. lifecycle.checkGrant.
   */
  grant: script(
    "grant",
    ["put_lease"],
    `
local o = P .. 'o:' .. ARGV[4]
local cur = redis.call('HMGET', o, 'state', 'v')
if not cur[1] then return { 'NOT_FOUND' } end
if ARGV[6] == 'READ' and cur[1] ~= 'SEALED' then
  return { 'NOT_SEALED', unpack(redis.call('HGETALL', o)) }
end
put_lease(ARGV[5], ARGV[4], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
if cur[2] == ARGV[10] then return { 'OK' } end
return { 'OK', unpack(redis.call('HGETALL', o)) }
`,
  ),

  /** ARGV[4..]: leaseId, timed, sealedAt, digest (or ''), address. lifecycle.checkSeal. */
  seal: script(
    "seal",
    ["get_lease", "expired", "bump"],
    `
local lid = ARGV[4]
local l = get_lease(lid, NODE, ARGV[5])
if not l then return { 'UNKNOWN_LEASE' } end
if expired(l) then return { 'LEASE_EXPIRED' } end
if l.access ~= 'CREATE' then return { 'WRONG_ACCESS' } end
local o = P .. 'o:' .. l.object
local cur = redis.call('HMGET', o, 'state', 'creator')
if not cur[1] or cur[2] ~= lid then return { 'NOT_FOUND' } end
if cur[1] == 'SEALED' then return { 'ALREADY_SEALED', unpack(redis.call('HGETALL', o)) } end
redis.call('HSET', o, 'state', 'SEALED', 'sealedAt', ARGV[6], '@' .. NODE, ARGV[8])
if ARGV[7] ~= '' then redis.call('HSET', o, 'digest', ARGV[7]) end
bump(o)
redis.call('PERSIST', o)
redis.call('ZREM', P .. 'creating', l.object)
redis.call('SADD', P .. 'sealed', l.object)
redis.call('SADD', P .. 'held:' .. NODE, l.object)
return { 'OK', unpack(redis.call('HGETALL', o)) }
`,
  ),

  /** ARGV[4..]: leaseId, timed. lifecycle.checkDiscard; the object leaves lookups in any state. */
  discard: script(
    "discard",
    ["get_lease", "expired", "drop_lease", "remove_object"],
    `
local lid = ARGV[4]
local l = get_lease(lid, NODE, ARGV[5])
if not l then return { 'UNKNOWN_LEASE' } end
if expired(l) then return { 'LEASE_EXPIRED' } end
if l.access == 'READ' then return { 'WRONG_ACCESS' } end
drop_lease(lid, NODE, l)
local cur = redis.call('HMGET', P .. 'o:' .. l.object, 'state', 'creator')
if cur[1] and (l.access ~= 'CREATE' or cur[2] == lid) then
  return { 'OK', unpack(remove_object(l.object)) }
end
return { 'OK' }
`,
  ),

  /** ARGV[4..]: leaseId, timed. */
  release: script(
    "release",
    ["get_lease", "expired", "end_lease"],
    `
local lid = ARGV[4]
local l = get_lease(lid, NODE, ARGV[5])
if not l then return { 'UNKNOWN_LEASE' } end
if expired(l) then return { 'LEASE_EXPIRED' } end
return { 'OK', unpack(end_lease(lid, NODE, l)) }
`,
  ),

  /** ARGV[4..]: leaseId, timed, ttl, expiresAt. A CREATING object's record follows its CREATE lease. */
  renew: script(
    "renew",
    ["get_lease", "expired", "put_lease", "server_ms"],
    `
local lid, ttl = ARGV[4], ARGV[6]
local l = get_lease(lid, NODE, ARGV[5])
if not l then return { 'UNKNOWN_LEASE' } end
if expired(l) then return { 'LEASE_EXPIRED' } end
if not l.timed then redis.call('HDEL', P .. 'leases:' .. NODE, lid) end
put_lease(lid, l.object, l.access, ttl, ARGV[7], ttl)
if l.access == 'CREATE' then
  local o = P .. 'o:' .. l.object
  local cur = redis.call('HMGET', o, 'state', 'creator')
  if cur[1] == 'CREATING' and cur[2] == lid then
    redis.call('PEXPIRE', o, ttl)
    redis.call('ZADD', P .. 'creating', server_ms() + tonumber(ttl), l.object)
  end
end
return { 'OK' }
`,
  ),

  /**
   * ARGV[4]: 'expire' ends the leases past their expiry, 'drop' ends them all;
   * ARGV[5..]: lease ids of this node. Returns per lease `{'OK', ...removedFields}`,
   * `{'LIVE'}` (not expired) or `{'GONE'}` (not in the store).
   */
  end: script(
    "end",
    ["get_lease", "expired", "end_lease"],
    `
local out = {}
for i = 5, #ARGV do
  local lid = ARGV[i]
  local l = get_lease(lid, NODE)
  if not l then
    out[#out + 1] = { 'GONE' }
  elseif ARGV[4] == 'expire' and not expired(l) then
    out[#out + 1] = { 'LIVE' }
  else
    out[#out + 1] = { 'OK', unpack(end_lease(lid, NODE, l)) }
  end
end
return out
`,
  ),

  /** ARGV[4]: objectId; ARGV[5..]: field, value pairs to set, on an object that exists. */
  annotate: script(
    "annotate",
    ["bump"],
    `
local o = P .. 'o:' .. ARGV[4]
if #ARGV < 6 or redis.call('EXISTS', o) == 0 then return { 'OK' } end
redis.call('HSET', o, unpack(ARGV, 5))
bump(o)
return { 'OK' }
`,
  ),

  /** ARGV[4..]: object ids. Returns the fields of each, {} for one not in lookups. */
  get: script(
    "get",
    [],
    `
local out = {}
for i = 4, #ARGV do out[#out + 1] = redis.call('HGETALL', P .. 'o:' .. ARGV[i]) end
return out
`,
  ),

  /**
   * ARGV[4]: 'count' or 'list'. Forgets the ids of CREATING objects whose
   * record expired, then returns the counts, or the ids, of sealed and of
   * creating objects.
   */
  index: script(
    "index",
    ["server_ms"],
    `
redis.call('ZREMRANGEBYSCORE', P .. 'creating', '-inf', server_ms())
if ARGV[4] == 'count' then
  return { redis.call('SCARD', P .. 'sealed'), redis.call('ZCARD', P .. 'creating') }
end
return { redis.call('SMEMBERS', P .. 'sealed'), redis.call('ZRANGE', P .. 'creating', 0, -1) }
`,
  ),

  /**
   * ARGV[4..]: incarnation, liveness ms, address. Refreshes this node's
   * liveness key. Returns 'OK', 'LOST' when the key was gone (Redis lost its
   * state, or other nodes took this one for dead), or 'TAKEN' when another
   * incarnation had set it.
   */
  heartbeat: script(
    "heartbeat",
    [],
    `
local alive = P .. 'alive:' .. NODE
local cur = redis.call('GET', alive)
redis.call('SET', alive, ARGV[4], 'PX', ARGV[5])
redis.call('HSET', P .. 'nodes', NODE, ARGV[6])
if cur == ARGV[4] then return 'OK' end
if cur then return 'TAKEN' end
return 'LOST'
`,
  ),

  /**
   * Ends the state of dead nodes: their leases without a TTL (abandoning the
   * objects they were creating) and their holdings (a sealed object left
   * without a holder leaves lookups). Leases with a TTL end by their Redis
   * expiry. ARGV[4]: one node to reap whether or not it looks alive (this
   * node's earlier run, or itself when closing), or '' for every node whose
   * liveness key is gone; ARGV[5]: the most entries to end in this call.
   * Returns how many it ended: call again while that equals the limit.
   */
  reap: script(
    "reap",
    ["get_lease", "end_lease", "remove_object", "bump"],
    `
local limit = tonumber(ARGV[5])
local budget = limit
local function reap(node, forced)
  local leases = P .. 'leases:' .. node
  for _, lid in ipairs(redis.call('HRANDFIELD', leases, budget)) do
    local l = get_lease(lid, node, '0')
    if l then end_lease(lid, node, l) else redis.call('HDEL', leases, lid) end
    budget = budget - 1
  end
  if budget <= 0 then return end
  for _, id in ipairs(redis.call('SPOP', P .. 'held:' .. node, budget)) do
    local o = P .. 'o:' .. id
    redis.call('HDEL', o, '@' .. node)
    local held = false
    for _, name in ipairs(redis.call('HKEYS', o)) do
      if string.byte(name, 1) == 64 then held = true break end
    end
    if not held and redis.call('HGET', o, 'state') == 'SEALED' then
      remove_object(id)
    elseif redis.call('EXISTS', o) == 1 then
      bump(o)
    end
    budget = budget - 1
  end
  if budget <= 0 then return end
  redis.call('HDEL', P .. 'nodes', node)
  if forced then redis.call('DEL', P .. 'alive:' .. node) end
end
if ARGV[4] ~= '' then
  reap(ARGV[4], true)
else
  for _, node in ipairs(redis.call('HKEYS', P .. 'nodes')) do
    if budget <= 0 then break end
    if node ~= NODE and redis.call('EXISTS', P .. 'alive:' .. node) == 0 then reap(node, false) end
  end
end
return limit - budget
`,
  ),

  /**
   * Registers this node as holder of sealed objects it holds, recording those
   * Redis lacks. Holders are kept per content: a copy joins an object already
   * recorded only when its size, blob sizes and digest match the record's.
   * ARGV[4]: address; ARGV[5]: JSON array of
   * [id, size, blobs, meta, createdAt, sealedAt, digest, tier, join], all
   * strings but `join`, true to join a recorded object only, never record one.
   * Returns a status per entry: 'OK' (holder now), 'CONFLICT' (the record
   * has other bytes), 'PENDING' (a digest is missing on either side, or of
   * another algorithm: ask again once both are known), 'CREATING' (another
   * object under the id is being created) or 'GONE' (nothing to join).
   */
  register: script(
    "register",
    ["bump"],
    `
local out = {}
local function algo(d) return string.sub(d, 1, (string.find(d, ':', 1, true) or 0)) end
for _, x in ipairs(cjson.decode(ARGV[5])) do
  local id, digest = x[1], x[7]
  local o = P .. 'o:' .. id
  local cur = redis.call('HMGET', o, 'state', 'size', 'blobs', 'digest', '@' .. NODE)
  local status = 'OK'
  if not cur[1] then
    if x[9] then
      status = 'GONE'
    else
      redis.call('HSET', o, 'state', 'SEALED', 'size', x[2], 'blobs', x[3], 'meta', x[4],
        'createdAt', x[5], 'sealedAt', x[6], 'creator', '', 'cnode', '')
      if digest ~= '' then redis.call('HSET', o, 'digest', digest) end
      if x[8] ~= '' then redis.call('HSET', o, 'tier', x[8]) end
      redis.call('SADD', P .. 'sealed', id)
    end
  elseif cur[1] ~= 'SEALED' then
    status = 'CREATING'
  elseif cur[2] ~= x[2] or cur[3] ~= x[3] then
    status = 'CONFLICT'
  elseif digest ~= '' and cur[4] and algo(digest) == algo(cur[4]) then
    if digest ~= cur[4] then status = 'CONFLICT' end
  elseif not cur[5] then
    status = 'PENDING'
  end
  if status == 'OK' then
    redis.call('HSET', o, '@' .. NODE, ARGV[4])
    bump(o)
    redis.call('SADD', P .. 'held:' .. NODE, id)
  end
  out[#out + 1] = status
end
return out
`,
  ),

  /**
   * Puts back leases of this node that Redis lacks. ARGV[4]: JSON array of
   * [leaseId, objectId, access, ttl, expiresAt, px, creating], where
   * `creating` is [size, blobs, meta, createdAt] for the CREATE lease of an
   * unsealed object (recorded again if missing) and false otherwise. Returns
   * per lease 'OK', 'GONE' (its object left lookups) or 'TAKEN' (another
   * object has the id).
   */
  restore: script(
    "restore",
    ["get_lease", "put_lease", "server_ms", "bump"],
    `
local out = {}
for _, x in ipairs(cjson.decode(ARGV[4])) do
  local lid, id, access, ttl, px, c = x[1], x[2], x[3], x[4], x[6], x[7]
  local o = P .. 'o:' .. id
  local status = 'OK'
  if not get_lease(lid, NODE) then
    local cur = redis.call('HMGET', o, 'state', 'creator')
    if type(c) == 'table' then
      if not cur[1] then
        redis.call('HSET', o, 'state', 'CREATING', 'size', c[1], 'blobs', c[2], 'meta', c[3],
          'createdAt', c[4], 'creator', lid, 'cnode', NODE)
        bump(o)
        if ttl == '' then
          redis.call('ZADD', P .. 'creating', '+inf', id)
        else
          redis.call('PEXPIRE', o, px)
          redis.call('ZADD', P .. 'creating', server_ms() + tonumber(px), id)
        end
      elseif cur[2] ~= lid then
        status = 'TAKEN'
      end
    elseif not cur[1] then
      status = 'GONE'
    end
    if status == 'OK' then put_lease(lid, id, access, ttl, x[5], px) end
  end
  out[#out + 1] = status
end
return out
`,
  ),
} as const satisfies Record<string, Script>;
