/**
 * Redis down while a receiver waits for pieces another receiver has on its
 * way: the pieces that one verifies meanwhile still reach it (it asks its
 * partial holders directly while the directory does not answer), instead of
 * a stall until the whole holder's away rule lets it ask the capped holder;
 * the copies' announces are retried until Redis is back. Redis killed, or
 * hung (stopped), where each lookup waits for the command timeout.
 */
import { assert } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemon } from "../helpers/cluster.ts";
import { eventually } from "../helpers/eventually.ts";
import { startProxy } from "../helpers/proxy.ts";
import { type RedisServer, redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { connect } from "../../mod.ts";
import { decodeBitfield, isComing } from "../../p2p/swarm/bitfield.ts";

const PIECES = 4;
const SIZE = PIECES * (4 << 20);

/**
 * r1 and r2 fetch one object from a capped holder, r2 leaving to r1 the
 * pieces on their way to it; Redis goes (`away` kills or stops it) and comes
 * back (`back`, idempotent, restarts or resumes it).
 */
async function relayWhileAway(
  away: (redis: RedisServer) => Promise<void>,
  back: (redis: RedisServer) => Promise<void>,
) {
  await using redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "packice-relay-down-" });
  try {
    await using holder = await startClusterDaemon(redis.url, dir, "h", "relay", [
      "--max-upload-rate",
      "16MB",
    ]);
    await using first = await startClusterDaemon(redis.url, dir, "r1", "relay");
    await using second = await startClusterDaemon(redis.url, dir, "r2", "relay");
    const bytes = pattern(SIZE, 67);
    {
      await using client = await connect(holder.socket);
      await client.put(bytes, { id: "model" });
    }
    // The holder's bytes counted on their way out.
    let uploaded = 0;
    await using counting = startProxy(holder.url, { onBytes: (sent) => void (uploaded = sent) });
    await redis.command("HSET", "relay:dir:{model}", "@h", counting.url);
    const started = performance.now();
    const read = async (socket: string) => {
      await using client = await connect(socket);
      using handle = await client.get("model");
      return { right: sameBytes(handle.bytes, bytes), ms: performance.now() - started };
    };
    const firstRead = read(first.socket);
    // r1 has a piece on its way from the holder in each of its 3 lanes (capped: none
    // verified for about a second).
    await eventually(
      async () => {
        const value = await redis.command("HGET", "relay:dir:{model}", "@r1");
        const bits = typeof value === "string"
          ? decodeBitfield(value.slice(value.indexOf(" ") + 1))
          : undefined;
        if (bits === undefined) return false;
        let coming = 0;
        for (let piece = 0; piece < PIECES; piece++) if (isComing(bits, PIECES, piece)) coming++;
        return coming === 3;
      },
      "r1 announced 3 pieces coming",
      { timeout: 10_000, interval: 5 },
    );
    // r2 starts, sees r1 covering 3 pieces, leaves them to it and asks the holder for the fourth.
    const secondRead = read(second.socket);
    // Its transfer began (with r1 in its first listing) once it announces a piece coming.
    await eventually(
      async () => typeof await redis.command("HGET", "relay:dir:{model}", "@r2") === "string",
      "r2 announced its first piece coming",
      { timeout: 10_000, interval: 5 },
    );
    await away(redis);
    const [one, two] = await Promise.all([firstRead, secondRead]);
    assert(one.right && two.right, "right bytes on both");
    // Before the fix r2 never learnt what r1 verified: it waited 2 s, then took
    // r1's three pieces from the holder one by one (2.00x; r2 done 3.6 s after r1).
    const figures = `the holder sent ${(uploaded / SIZE).toFixed(2)}x the object, r1 was done ` +
      `after ${Math.round(one.ms)} ms, r2 after ${Math.round(two.ms)} ms`;
    assert(uploaded <= 1.5 * SIZE, figures);
    assert(two.ms < one.ms + 1500, figures);
    // Redis back: each copy's announce, retried in the background, lists it whole.
    await back(redis);
    await eventually(
      async () => {
        const fields = await redis.command("HMGET", "relay:dir:{model}", "@r1", "@r2");
        return Array.isArray(fields) && fields[0] === first.url && fields[1] === second.url;
      },
      "both copies announced whole",
      { timeout: 15_000, interval: 50 },
    );
  } finally {
    // Back whatever happened: a Redis left stopped would not stop when disposed of.
    await back(redis);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "Redis down: a receiver takes the pieces a relay verifies meanwhile; copies announced once it is back",
  redisTestOptions,
  () =>
    relayWhileAway(
      async (redis) => {
        // Kept for its return: the entry as it was, both receivers partial holders.
        await redis.command("SAVE");
        await redis.stop("SIGKILL");
      },
      async (redis) => {
        if (redis.pid === undefined) await redis.restart();
      },
    ),
);

Deno.test(
  "Redis hung: a receiver takes the pieces a relay verifies meanwhile; copies announced once it answers",
  redisTestOptions,
  () => {
    let stopped: number | undefined;
    return relayWhileAway(
      (redis) => {
        stopped = redis.pid;
        Deno.kill(stopped!, "SIGSTOP");
        return Promise.resolve();
      },
      () => {
        if (stopped !== undefined) Deno.kill(stopped, "SIGCONT");
        stopped = undefined;
        return Promise.resolve();
      },
    );
  },
);
