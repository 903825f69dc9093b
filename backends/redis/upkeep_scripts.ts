/**
 * The scripts of reconciliation and reaping: ending many leases of this
 * node, listing and reaping a dead node's state, and registering this node's
 * holdings and leases again after Redis lost them.
 *
 * @module
 */
import { type Script, script } from "./lua.ts";

/** The scripts of reconciliation and reaping, by operation. */
export const UPKEEP_SCRIPTS = {
  /**
   * Leases of this node: KEYS[7..] an object key and a lease key per lease;
   * ARGV[3]: 'expire' ends the leases past their expiry, 'drop' ends them
   * all; ARGV[4..]: the lease ids. Returns per lease
   * `{'OK', ...removedFields}`, `{'LIVE'}` (not expired) or `{'GONE'}` (not in
   * the store).
   */
  end: script(
    "end",
    ["get_lease", "expired", "end_lease"],
    `
local out = {}
for i = 0, #ARGV - 4 do
  local lid = ARGV[4 + i]
  local o, lk = KEYS[7 + 2 * i], KEYS[8 + 2 * i]
  local l = get_lease(lk, lid, '')
  if not l then
    out[#out + 1] = { 'GONE' }
  elseif ARGV[3] == 'expire' and not expired(l) then
    out[#out + 1] = { 'LIVE' }
  else
    out[#out + 1] = { 'OK', unpack(end_lease(o, lid, l)) }
  end
end
return out
`,
  ),

  /**
   * KEYS[1]: the leases of node ARGV[3] on the shard; ARGV[4]: the most
   * entries of each kind. Returns some of the node's leases without a TTL on
   * this shard, as lease id, `ACCESS:objectId` pairs, and the ids of objects
   * it holds here, for {@link UPKEEP_SCRIPTS.reap}.
   */
  owned: script(
    "owned",
    [],
    `
local node, n = ARGV[3], tonumber(ARGV[4])
local held = {}
for i, m in ipairs(redis.call('ZRANGEBYLEX', H, '[' .. node .. '\\n', '(' .. node .. '\\v',
  'LIMIT', 0, n)) do
  held[i] = string.sub(m, #node + 2)
end
return { redis.call('HRANDFIELD', U, n, 'WITHVALUES'), held }
`,
  ),

  /**
   * Ends a dead node's state on one shard, as listed by the caller from the
   * shard's indexes: its leases without a TTL (abandoning the objects they
   * were creating) and its holdings (a sealed object left without a holder
   * leaves lookups). Leases with a TTL end by their Redis expiry. KEYS[1]:
   * the node's leases on the shard; KEYS[7..]: the object of each lease, then
   * of each holding; ARGV[3]: the node; ARGV[4]: how many leases; ARGV[5..]:
   * the lease ids, then the object ids it holds. An entry no longer there is
   * skipped.
   */
  reap: script(
    "reap",
    ["get_lease", "end_lease", "remove_object", "bump"],
    `
local node, leases = ARGV[3], tonumber(ARGV[4])
for i = 1, leases do
  local lid = ARGV[4 + i]
  local l = get_lease(false, lid, '0')
  if l then end_lease(KEYS[6 + i], lid, l) end
end
for i = leases + 1, #ARGV - 4 do
  local id, o = ARGV[4 + i], KEYS[6 + i]
  if redis.call('ZREM', H, node .. '\\n' .. id) == 1 then
    redis.call('HDEL', o, '@' .. node)
    local held = false
    for _, name in ipairs(redis.call('HKEYS', o)) do
      if string.byte(name, 1) == 64 then held = true break end
    end
    if not held and redis.call('HGET', o, 'state') == 'SEALED' then
      remove_object(o, id)
    elseif redis.call('EXISTS', o) == 1 then
      bump(o)
    end
  end
end
return 'OK'
`,
  ),

  /**
   * Registers this node as holder of sealed objects it holds, recording those
   * Redis lacks. Holders are kept per content: a copy joins an object already
   * recorded only when its size, blob sizes and digest match the record's.
   * KEYS[7..]: the objects; ARGV[3]: address; ARGV[4]: JSON array of
   * [id, size, blobs, meta, createdAt, sealedAt, digest, tier, join], all
   * strings but `join`, true to join a recorded object only, never record one.
   * Returns a status per entry: 'OK' (holder now), 'CONFLICT' (the record
   * has other bytes), 'PENDING' (a digest is missing on either side, or of
   * another algorithm: ask again once both are known), 'CREATING' (another
   * object under the id is being created) or 'GONE' (nothing to join).
   */
  register: script(
    "register",
    ["bump", "next_order"],
    `
local out = {}
local function algo(d) return string.sub(d, 1, (string.find(d, ':', 1, true) or 0)) end
for i, x in ipairs(cjson.decode(ARGV[4])) do
  local id, digest, o = x[1], x[7], KEYS[6 + i]
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
      redis.call('SADD', SEALED, id)
      redis.call('ZADD', ORDER, next_order(), id)
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
  if status == 'OK' and not cur[5] then
    redis.call('HSET', o, '@' .. NODE, ARGV[3])
    bump(o)
    redis.call('ZADD', H, 0, NODE .. '\\n' .. id)
  end
  out[#out + 1] = status
end
return out
`,
  ),

  /**
   * Puts back leases of this node that Redis lacks. KEYS[7..]: an object key
   * and a lease key per lease; ARGV[3]: JSON array of [leaseId, objectId,
   * access, ttl, expiresAt, px, creating], where `creating` is [size, blobs,
   * meta, createdAt] for the CREATE lease of an unsealed object (recorded
   * again if missing) and false otherwise. Returns per lease 'OK', 'GONE'
   * (its object left lookups) or 'TAKEN' (another object has the id).
   */
  restore: script(
    "restore",
    ["get_lease", "put_lease", "bump", "start_creating"],
    `
local out = {}
for i, x in ipairs(cjson.decode(ARGV[3])) do
  local lid, id, access, ttl, px, c = x[1], x[2], x[3], x[4], x[6], x[7]
  local o, lk = KEYS[5 + 2 * i], KEYS[6 + 2 * i]
  local status = 'OK'
  if not get_lease(lk, lid, '') then
    local cur = redis.call('HMGET', o, 'state', 'creator')
    if type(c) == 'table' then
      if not cur[1] then
        start_creating(o, id, lid, c[1], c[2], c[3], c[4], x[5], ttl, px)
      elseif cur[2] ~= lid then
        status = 'TAKEN'
      end
    elseif not cur[1] then
      status = 'GONE'
    end
    if status == 'OK' then put_lease(lk, lid, id, access, ttl, x[5], px) end
  end
  out[#out + 1] = status
end
return out
`,
  ),
} as const satisfies Record<string, Script>;
