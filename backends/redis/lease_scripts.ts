/**
 * The scripts of one lease or one object's life: create, uses (grants and
 * releases of READ and WRITE leases), seal, discard, release (of a CREATE
 * lease), renew, annotate. Those about one lease of the general
 * kind take, after the shard's keys, `KEYS[7]` the object's key and
 * `KEYS[8]` the lease's key, and `ARGV[3..6]`: lease id, access, object id,
 * and whether it has a TTL ('1', '0', or '' when unknown). The hot path
 * (grants of READ and WRITE leases, and their releases) is one script for
 * many callers, {@link LEASE_SCRIPTS.uses}, with only the keys it touches.
 *
 * @module
 */
import { type Script, script } from "./lua.ts";

/** The scripts of one lease or one object's life, by operation. */
export const LEASE_SCRIPTS = {
  /**
   * KEYS[7..8]: object, lease, and with a node known to be dead, KEYS[9]:
   * its leases on the shard. ARGV[3..]: objectId, leaseId, ttl, expiresAt,
   * px, size, blobs, meta, createdAt, and that node ('' for none). An object
   * still CREATING whose CREATE lease has ended is replaced; when that lease
   * has no TTL and its node is another, the reply is `{'ASK', node}`: call
   * again naming the node if it is dead.
   */
  create: script(
    "create",
    ["remove_object", "put_lease", "start_creating"],
    `
local id, lid, ttl, px = ARGV[3], ARGV[4], ARGV[5], ARGV[7]
local o, lk = KEYS[7], KEYS[8]
local cur = redis.call('HMGET', o, 'state', 'creator', 'cnode', 'cexp')
if cur[1] then
  if cur[1] ~= 'CREATING' then return { 'ALREADY_EXISTS' } end
  if cur[4] and cur[4] ~= '' then
    if tonumber(cur[4]) > NOW then return { 'ALREADY_EXISTS' } end
  elseif cur[3] == NODE then
    if redis.call('HEXISTS', U, cur[2]) == 1 then return { 'ALREADY_EXISTS' } end
  elseif cur[3] ~= ARGV[12] then
    return { 'ASK', cur[3] }
  else
    redis.call('HDEL', KEYS[9], cur[2])
  end
  remove_object(o, id)
end
start_creating(o, id, lid, ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[6], ttl, px)
put_lease(lk, lid, id, 'CREATE', ttl, ARGV[6], px)
return { 'OK' }
`,
  ),

  /** A lease, then ARGV[7..]: sealedAt, digest (or ''), address. lifecycle.checkSeal. */
  seal: script(
    "seal",
    ["get_lease", "expired", "bump"],
    `
local lid, id, o = ARGV[3], ARGV[5], KEYS[7]
local l = get_lease(KEYS[8], lid, ARGV[6])
if not l then return { 'UNKNOWN_LEASE' } end
if expired(l) then return { 'LEASE_EXPIRED' } end
if l.access ~= 'CREATE' then return { 'WRONG_ACCESS' } end
local cur = redis.call('HMGET', o, 'state', 'creator')
if not cur[1] or cur[2] ~= lid then return { 'NOT_FOUND' } end
if cur[1] == 'SEALED' then return { 'ALREADY_SEALED', unpack(redis.call('HGETALL', o)) } end
redis.call('HSET', o, 'state', 'SEALED', 'sealedAt', ARGV[7], '@' .. NODE, ARGV[9])
if ARGV[8] ~= '' then redis.call('HSET', o, 'digest', ARGV[8]) end
bump(o)
redis.call('PERSIST', o)
redis.call('ZREM', CREATING, id)
redis.call('SADD', SEALED, id)
redis.call('ZADD', H, 0, NODE .. '\\n' .. id)
return { 'OK', unpack(redis.call('HGETALL', o)) }
`,
  ),

  /** A lease. lifecycle.checkDiscard; the object leaves lookups in any state. */
  discard: script(
    "discard",
    ["get_lease", "expired", "drop_lease", "remove_object"],
    `
local lid, id, o = ARGV[3], ARGV[5], KEYS[7]
local l = get_lease(KEYS[8], lid, ARGV[6])
if not l then return { 'UNKNOWN_LEASE' } end
if expired(l) then return { 'LEASE_EXPIRED' } end
if l.access == 'READ' then return { 'WRONG_ACCESS' } end
drop_lease(l)
local cur = redis.call('HMGET', o, 'state', 'creator')
if cur[1] and (l.access ~= 'CREATE' or cur[2] == lid) then
  return { 'OK', unpack(remove_object(o, id)) }
end
return { 'OK' }
`,
  ),

  /** A lease: a CREATE lease, whose end may abandon its object. */
  release: script(
    "release",
    ["get_lease", "expired", "end_lease"],
    `
local lid = ARGV[3]
local l = get_lease(KEYS[8], lid, ARGV[6])
if not l then return { 'UNKNOWN_LEASE' } end
if expired(l) then return { 'LEASE_EXPIRED' } end
return { 'OK', unpack(end_lease(KEYS[7], lid, l)) }
`,
  ),

  /**
   * The hot path: grants and releases of READ and WRITE leases on one shard,
   * many callers' in one call (see `use_batches.ts`), each entry checked as
   * if alone. KEYS[1]: this node's leases without a TTL on the shard; the
   * other keys (objects, leases with a TTL) are named by their index in
   * KEYS. ARGV[1]: the node, then entries one after the other:
   * - `g`, object key, objectId, leaseId, access, version: a grant of a lease
   *   without a TTL; `version` is that of the caller's copy of the object
   *   ('' for none), whose fields come back only when that copy is stale.
   *   lifecycle.checkGrant.
   * - `t`, the same, then lease key, ttl, expiresAt, px: a grant with a TTL.
   * - `r`, leaseId: the release of a lease without a TTL. It ends the lease
   *   whether or not Redis still had it, so its reply is always OK.
   * - `e`, lease key, the caller's clock: the release of a lease with a TTL.
   *
   * Returns a reply per entry: a status alone, or `{status, ...fields}`.
   * The leases without a TTL go in one HSET and one HDEL, and each object is
   * read once, however many entries name it.
   */
  uses: script(
    "uses",
    ["put_lease"],
    `
local out, puts, drops, seen = {}, {}, {}, {}
local function fields(k)
  local o = seen[k]
  if not o.fields then o.fields = redis.call('HGETALL', KEYS[k]) end
  return o.fields
end
local i = 2
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'r' then
    drops[#drops + 1] = ARGV[i + 1]
    out[#out + 1] = 'OK'
    i = i + 2
  elseif op == 'e' then
    local lk = KEYS[tonumber(ARGV[i + 1])]
    local at = redis.call('HGET', lk, 'expiresAt')
    if not at then
      out[#out + 1] = 'UNKNOWN_LEASE'
    elseif tonumber(at) <= tonumber(ARGV[i + 2]) then
      out[#out + 1] = 'LEASE_EXPIRED'
    else
      redis.call('DEL', lk)
      out[#out + 1] = 'OK'
    end
    i = i + 3
  elseif op == 'g' or op == 't' then
    local k, id, lid, access = tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local o = seen[k]
    if not o then
      local cur = redis.call('HMGET', KEYS[k], 'state', 'v')
      o = { state = cur[1], v = cur[2] }
      seen[k] = o
    end
    if not o.state then
      out[#out + 1] = 'NOT_FOUND'
    elseif access == 'READ' and o.state ~= 'SEALED' then
      out[#out + 1] = { 'NOT_SEALED', unpack(fields(k)) }
    else
      if op == 'g' then
        puts[#puts + 1] = lid
        puts[#puts + 1] = access .. ':' .. id
      else
        put_lease(KEYS[tonumber(ARGV[i + 6])], lid, id, access, ARGV[i + 7], ARGV[i + 8],
          ARGV[i + 9])
      end
      if o.v == ARGV[i + 5] then
        out[#out + 1] = 'OK'
      else
        out[#out + 1] = { 'OK', unpack(fields(k)) }
      end
    end
    i = i + (op == 'g' and 6 or 10)
  else
    return redis.error_reply('ERR uses: unknown entry ' .. tostring(op))
  end
end
if #puts > 0 then redis.call('HSET', U, unpack(puts)) end
if #drops > 0 then redis.call('HDEL', U, unpack(drops)) end
return out
`,
    "local U, NODE = KEYS[1], ARGV[1]",
  ),

  /**
   * A lease, then ARGV[7..]: ttl, expiresAt. A CREATING object's record
   * follows its CREATE lease.
   */
  renew: script(
    "renew",
    ["get_lease", "expired", "put_lease", "server_ms"],
    `
local lid, id, ttl, o = ARGV[3], ARGV[5], ARGV[7], KEYS[7]
local l = get_lease(KEYS[8], lid, ARGV[6])
if not l then return { 'UNKNOWN_LEASE' } end
if expired(l) then return { 'LEASE_EXPIRED' } end
if not l.timed then redis.call('HDEL', U, lid) end
put_lease(KEYS[8], lid, id, l.access, ttl, ARGV[8], ttl)
if l.access == 'CREATE' then
  local cur = redis.call('HMGET', o, 'state', 'creator')
  if cur[1] == 'CREATING' and cur[2] == lid then
    redis.call('HSET', o, 'cexp', ARGV[8])
    redis.call('PEXPIRE', o, ttl)
    redis.call('ZADD', CREATING, server_ms() + tonumber(ttl), id)
  end
end
return { 'OK' }
`,
  ),

  /**
   * KEYS[7]: an object; ARGV[3..]: field, value pairs to set, if it exists.
   * A digest is recorded only by a holder, and never over another one: the
   * record's digest is the content its holders were checked against.
   */
  annotate: script(
    "annotate",
    ["bump"],
    `
local o = KEYS[7]
if redis.call('EXISTS', o) == 0 then return { 'OK' } end
local cur = redis.call('HMGET', o, 'digest', '@' .. NODE)
local set = {}
for i = 3, #ARGV - 1, 2 do
  if ARGV[i] ~= 'digest' or (cur[2] and (not cur[1] or cur[1] == ARGV[i + 1])) then
    set[#set + 1] = ARGV[i]
    set[#set + 1] = ARGV[i + 1]
  end
end
if #set == 0 then return { 'OK' } end
redis.call('HSET', o, unpack(set))
bump(o)
return { 'OK' }
`,
  ),
} as const satisfies Record<string, Script>;
