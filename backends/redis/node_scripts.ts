/**
 * The scripts of node liveness: a node's heartbeat, the nodes whose liveness
 * lapsed, and forgetting a node.
 *
 * @module
 */
import { NODES, type Script, script } from "./lua.ts";

/** The scripts of node liveness, by operation. */
export const NODE_SCRIPTS = {
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
