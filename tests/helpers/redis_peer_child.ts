/**
 * A test-only daemon in its own process: a MemoryPeer whose leases and
 * directory live in Redis (with digests, as `packice serve --redis` runs it),
 * served over HTTP on a free loopback port. It prints `ready <url>` and serves
 * until killed; SIGSTOP freezes it past its liveness.
 *
 * Usage: deno run -A redis_peer_child.ts REDIS_URL NAMESPACE NODE LIVENESS_MS
 */
import { computeDigest } from "../../backends/digest.ts";
import { RedisLeaseStore } from "../../backends/redis/mod.ts";
import { MemoryPeer } from "../../peers/memory_peer.ts";
import { serveHttp } from "../../transport/http/server.ts";

const [url, namespace, node, liveness] = Deno.args;
const log = {
  info: (message: string) => console.error(`${node} INFO ${message}`),
  warn: (message: string) => console.error(`${node} WARN ${message}`),
};
const leases = await RedisLeaseStore.connect({
  url: url!,
  namespace: namespace!,
  node: node!,
  liveness: Number(liveness),
  backoff: { initial: 20, max: 100 },
  connectAttempts: Infinity,
  log,
});
const peer = new MemoryPeer({
  capacity: 16 << 20,
  leases,
  node: leases.node,
  digest: computeDigest,
});
const server = serveHttp(peer, { port: 0 });
console.log(`ready ${server.url}`);
