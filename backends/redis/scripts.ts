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
 * Redis Cluster: every key a script touches is passed in KEYS, and all of
 * them are in one hash slot. Objects are spread over `shards` slots by their
 * id ({@link shardOf}); each shard keeps its objects and the indexes over them
 * under one hash tag, so no script spans two slots. Node liveness lives under
 * a tag of its own, and what needs both (reaping a dead node, replacing an
 * object whose creator's node died) takes two steps from the TypeScript side.
 *
 * Shard scripts take `ARGV[1]` the caller's clock in milliseconds (expiry is
 * decided by it; Redis expiries are the backstop) and `ARGV[2]` the caller's
 * node id, and first the shard's own keys (see {@link shardKeys}):
 * - `KEYS[1]` `{ns:s}:leases:<node>`: the node's leases without a TTL on the
 *   shard, a hash lease id to `ACCESS:objectId`. They live as long as their
 *   node is alive. The caller's node, or the dead node a reap is about.
 * - `KEYS[2]` `{ns:s}:h`: holders, a sorted set of `node\nobject`.
 * - `KEYS[3]` `{ns:s}:sealed`: the ids of sealed objects.
 * - `KEYS[4]` `{ns:s}:creating`: ids of objects being created, scored by when
 *   their record expires in Redis time.
 * - `KEYS[5]` `{ns:s}:version`: where object versions come from, a hash: the
 *   shard's `epoch` (new when the shard lost its state) and a counter `n`.
 *
 * then the keys of the call: `{ns:s}:o:<id>`, an object, a hash: `state`,
 * `size`, `blobs`, `meta`, `createdAt`, `sealedAt`, `digest`, `tier`,
 * `creator` (the CREATE lease), `cnode` (its node), `cexp` (its expiry, empty
 * without a TTL), `v` (a version, new on every change, so a reader's cached
 * copy is checked without sending the hash), and one `@<node>` field per
 * holder, valued with the address that node serves on; and
 * `{ns:s}:l:<lease>`, a lease with a TTL, a hash with a Redis expiry.
 *
 * Node scripts take `{ns}:alive` (node to the Redis time its liveness ends),
 * `{ns}:inc` (node to its incarnation) and `{ns}:nodes` (node to address).
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
  ];
}

/** The key of a node's leases without a TTL on a shard. */
export function nodeLeasesKey(namespace: string, shard: number, node: string): string {
  return `${shardTag(namespace, shard)}:leases:${node}`;
}

/** The key of an object's hash. */
export function objectKey(namespace: string, shard: number, id: string): string {
  return `${shardTag(namespace, shard)}:o:${id}`;
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
  for (const byte of encoder.encode(id)) hash = Math.imul(hash ^ byte, 0x01000193);
  return (hash >>> 0) % shards;
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
  // Removes an object from lookups and from the holder index; returns its fields.
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
  return f
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
function script(name: string, uses: readonly string[], body: string, prelude = SHARD): Script {
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

const SHARD = "local NOW, NODE = tonumber(ARGV[1]), ARGV[2]\n" +
  "local U, H, SEALED, CREATING, VERSION = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]";
const NODES = "local NODE = ARGV[2]\nlocal ALIVE, INC, NODES = KEYS[1], KEYS[2], KEYS[3]";

/**
 * The scripts, by operation. Those about one lease take, after the shard's
 * keys, `KEYS[6]` the object's key and `KEYS[7]` the lease's key, and
 * `ARGV[3..6]`: lease id, access, object id, and whether it has a TTL
 * ('1', '0', or '' when unknown).
 */
export const SCRIPTS = {
  /**
   * KEYS[6..7]: object, lease, and with a node known to be dead, KEYS[8]:
   * its leases on the shard. ARGV[3..]: objectId, leaseId, ttl, expiresAt,
   * px, size, blobs, meta, createdAt, and that node ('' for none). An object
   * still CREATING whose CREATE lease has ended is replaced; when that lease
   * has no TTL and its node is another, the reply is `{'ASK', node}`: call
   * again naming the node if it is dead.
   */
  create: script(
    "create",
    ["remove_object", "put_lease", "server_ms", "bump"],
    `
local id, lid, ttl, px = ARGV[3], ARGV[4], ARGV[5], ARGV[7]
local o, lk = KEYS[6], KEYS[7]
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
    redis.call('HDEL', KEYS[8], cur[2])
  end
  remove_object(o, id)
end
redis.call('HSET', o, 'state', 'CREATING', 'size', ARGV[8], 'blobs', ARGV[9], 'meta', ARGV[10],
  'createdAt', ARGV[11], 'creator', lid, 'cnode', NODE, 'cexp', ARGV[6])
bump(o)
put_lease(lk, lid, id, 'CREATE', ttl, ARGV[6], px)
if ttl == '' then
  redis.call('ZADD', CREATING, '+inf', id)
else
  redis.call('PEXPIRE', o, px)
  redis.call('ZADD', CREATING, server_ms() + tonumber(px), id)
end
return { 'OK' }
`,
  ),

  /**
   * The hot path, with only the keys it touches: KEYS[1] the object, KEYS[2]
   * where the lease is kept (the node's leases on the shard for a lease
   * without a TTL, else the lease's own key). ARGV: node, objectId, leaseId,
   * access (READ or WRITE), ttl, expiresAt, px, and the version of the
   * caller's copy of the object ('' for none): the fields come back only when
   * that copy is stale. lifecycle.checkGrant.
   */
  grant: script(
    "grant",
    ["put_lease"],
    `
local o = KEYS[1]
local cur = redis.call('HMGET', o, 'state', 'v')
if not cur[1] then return { 'NOT_FOUND' } end
if ARGV[4] == 'READ' and cur[1] ~= 'SEALED' then
  return { 'NOT_SEALED', unpack(redis.call('HGETALL', o)) }
end
put_lease(KEYS[2], ARGV[3], ARGV[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if cur[2] == ARGV[8] then return { 'OK' } end
return { 'OK', unpack(redis.call('HGETALL', o)) }
`,
    "local NODE, U = ARGV[1], KEYS[2]",
  ),

  /** A lease, then ARGV[7..]: sealedAt, digest (or ''), address. lifecycle.checkSeal. */
  seal: script(
    "seal",
    ["get_lease", "expired", "bump"],
    `
local lid, id, o = ARGV[3], ARGV[5], KEYS[6]
local l = get_lease(KEYS[7], lid, ARGV[6])
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
local lid, id, o = ARGV[3], ARGV[5], KEYS[6]
local l = get_lease(KEYS[7], lid, ARGV[6])
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
local l = get_lease(KEYS[7], lid, ARGV[6])
if not l then return { 'UNKNOWN_LEASE' } end
if expired(l) then return { 'LEASE_EXPIRED' } end
return { 'OK', unpack(end_lease(KEYS[6], lid, l)) }
`,
  ),

  /**
   * The hot path, with only the key it touches: ends a READ or WRITE lease,
   * which leaves its object as it is. KEYS[1]: where the lease is kept (as
   * for {@link SCRIPTS.grant}); ARGV: the caller's clock, leaseId, and
   * whether it has a TTL ('1' or '0').
   */
  release_use: script(
    "release_use",
    [],
    `
local lid, home = ARGV[2], KEYS[1]
if ARGV[3] == '0' then
  if redis.call('HDEL', home, lid) == 0 then return { 'UNKNOWN_LEASE' } end
  return { 'OK' }
end
local at = redis.call('HGET', home, 'expiresAt')
if not at then return { 'UNKNOWN_LEASE' } end
if tonumber(at) <= tonumber(ARGV[1]) then return { 'LEASE_EXPIRED' } end
redis.call('DEL', home)
return { 'OK' }
`,
    "",
  ),

  /**
   * A lease, then ARGV[7..]: ttl, expiresAt. A CREATING object's record
   * follows its CREATE lease.
   */
  renew: script(
    "renew",
    ["get_lease", "expired", "put_lease", "server_ms"],
    `
local lid, id, ttl, o = ARGV[3], ARGV[5], ARGV[7], KEYS[6]
local l = get_lease(KEYS[7], lid, ARGV[6])
if not l then return { 'UNKNOWN_LEASE' } end
if expired(l) then return { 'LEASE_EXPIRED' } end
if not l.timed then redis.call('HDEL', U, lid) end
put_lease(KEYS[7], lid, id, l.access, ttl, ARGV[8], ttl)
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
   * Leases of this node: KEYS[6..] an object key and a lease key per lease;
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
  local o, lk = KEYS[6 + 2 * i], KEYS[7 + 2 * i]
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
   * KEYS[6]: an object; ARGV[3..]: field, value pairs to set, if it exists.
   * A digest is recorded only by a holder, and never over another one: the
   * record's digest is the content its holders were checked against.
   */
  annotate: script(
    "annotate",
    ["bump"],
    `
local o = KEYS[6]
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

  /**
   * KEYS[1]: the leases of node ARGV[3] on the shard; ARGV[4]: the most
   * entries of each kind. Returns some of the node's leases without a TTL on
   * this shard, as lease id, `ACCESS:objectId` pairs, and the ids of objects
   * it holds here, for {@link SCRIPTS.reap}.
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
   * the node's leases on the shard; KEYS[6..]: the object of each lease, then
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
  if l then end_lease(KEYS[5 + i], lid, l) end
end
for i = leases + 1, #ARGV - 4 do
  local id, o = ARGV[4 + i], KEYS[5 + i]
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
   * KEYS[6..]: the objects; ARGV[3]: address; ARGV[4]: JSON array of
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
for i, x in ipairs(cjson.decode(ARGV[4])) do
  local id, digest, o = x[1], x[7], KEYS[5 + i]
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
   * Puts back leases of this node that Redis lacks. KEYS[6..]: an object key
   * and a lease key per lease; ARGV[3]: JSON array of [leaseId, objectId,
   * access, ttl, expiresAt, px, creating], where `creating` is [size, blobs,
   * meta, createdAt] for the CREATE lease of an unsealed object (recorded
   * again if missing) and false otherwise. Returns per lease 'OK', 'GONE'
   * (its object left lookups) or 'TAKEN' (another object has the id).
   */
  restore: script(
    "restore",
    ["get_lease", "put_lease", "server_ms", "bump"],
    `
local out = {}
for i, x in ipairs(cjson.decode(ARGV[3])) do
  local lid, id, access, ttl, px, c = x[1], x[2], x[3], x[4], x[6], x[7]
  local o, lk = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  local status = 'OK'
  if not get_lease(lk, lid, '') then
    local cur = redis.call('HMGET', o, 'state', 'creator')
    if type(c) == 'table' then
      if not cur[1] then
        redis.call('HSET', o, 'state', 'CREATING', 'size', c[1], 'blobs', c[2], 'meta', c[3],
          'createdAt', c[4], 'creator', lid, 'cnode', NODE, 'cexp', x[5])
        bump(o)
        if ttl == '' then
          redis.call('ZADD', CREATING, '+inf', id)
        else
          redis.call('PEXPIRE', o, px)
          redis.call('ZADD', CREATING, server_ms() + tonumber(px), id)
        end
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

  /**
   * ARGV[3..]: incarnation, liveness ms, address. Extends this node's
   * liveness. Returns 'OK', 'LOST' when it had lapsed or was gone (Redis lost
   * its state, or other nodes took this one for dead), or 'TAKEN' when
   * another incarnation had set it.
   */
  heartbeat: script(
    "heartbeat",
    ["server_ms"],
    `
local now = server_ms()
local until_ms = redis.call('ZSCORE', ALIVE, NODE)
local inc = redis.call('HGET', INC, NODE)
redis.call('ZADD', ALIVE, now + tonumber(ARGV[4]), NODE)
redis.call('HSET', INC, NODE, ARGV[3])
redis.call('HSET', NODES, NODE, ARGV[5])
if not until_ms or tonumber(until_ms) <= now then return 'LOST' end
if inc == ARGV[3] then return 'OK' end
return 'TAKEN'
`,
    NODES,
  ),

  /**
   * ARGV[3]: '' for the nodes other than this one whose liveness lapsed, or a
   * node id: '1' when that node is alive, else '0'.
   */
  dead: script(
    "dead",
    ["server_ms"],
    `
local now = server_ms()
if ARGV[3] ~= '' then
  local until_ms = redis.call('ZSCORE', ALIVE, ARGV[3])
  if until_ms and tonumber(until_ms) > now then return '1' end
  return '0'
end
local out = {}
for _, node in ipairs(redis.call('HKEYS', NODES)) do
  local until_ms = redis.call('ZSCORE', ALIVE, node)
  if node ~= NODE and (not until_ms or tonumber(until_ms) <= now) then out[#out + 1] = node end
end
return out
`,
    NODES,
  ),

  /**
   * Forgets a node whose state every shard has ended. ARGV[3]: the node;
   * ARGV[4]: '1' to forget it even if it looks alive (this node's earlier run,
   * or itself when closing).
   */
  forget: script(
    "forget",
    ["server_ms"],
    `
local node = ARGV[3]
local until_ms = redis.call('ZSCORE', ALIVE, node)
if ARGV[4] ~= '1' and until_ms and tonumber(until_ms) > server_ms() then return 'ALIVE' end
redis.call('ZREM', ALIVE, node)
redis.call('HDEL', INC, node)
redis.call('HDEL', NODES, node)
return 'OK'
`,
    NODES,
  ),
} as const satisfies Record<string, Script>;
