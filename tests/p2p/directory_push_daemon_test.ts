/**
 * Daemons on Redis learn of each other's pieces from the directory's pushes:
 * a transfer watches its object's channel while it runs (and no longer),
 * and looks holders up only now and then instead of every 50 ms.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemon } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { connect } from "../../mod.ts";
import { FALLBACK_MS } from "../../p2p/holder_listing.ts";

const SIZE = 4 * (4 << 20);

Deno.test(
  "two daemons fetching from a capped holder watch the object while they fetch, and look it up seldom",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-push-" });
    try {
      await using holder = await startClusterDaemon(redis.url, dir, "h", "push", [
        "--max-upload-rate",
        "16MB",
      ]);
      await using first = await startClusterDaemon(redis.url, dir, "r1", "push");
      await using second = await startClusterDaemon(redis.url, dir, "r2", "push");
      const bytes = pattern(SIZE, 71);
      {
        await using client = await connect(holder.socket);
        await client.put(bytes, { id: "model" });
      }
      const calls = async (command: string) => {
        const info = String(await redis.command("INFO", "commandstats"));
        return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(info)?.[1] ?? 0);
      };
      const listingsBefore = await calls("hgetall");
      const started = performance.now();
      const read = async (socket: string) => {
        await using client = await connect(socket);
        using handle = await client.get("model");
        return { right: sameBytes(handle.bytes, bytes), ms: performance.now() - started };
      };
      const [one, two] = await Promise.all([read(first.socket), read(second.socket)]);
      assert(one.right && two.right, "right bytes on both");
      const listings = await calls("hgetall") - listingsBefore;
      // Each transfer: its first lookup, one as it takes its watch, one once
      // the watch is live, then one every FALLBACK_MS at most (lookups, or
      // announces answering for one), and two more for a moment with no
      // source left (a loaded machine: CI read 17 of 16.8 without them).
      // Polled every 50 ms, as before pushes, the two would make about 40 a
      // second (64 here).
      const bound = [one, two].reduce((sum, { ms }) => sum + 6 + ms / FALLBACK_MS, 2);
      assert(
        listings <= bound,
        `${listings} listings in transfers of ${Math.round(one.ms)} and ${
          Math.round(two.ms)
        } ms (at most ${bound.toFixed(1)})`,
      );
      assert(await calls("ssubscribe") >= 2, "each transfer watched its object");
      // The watches ended with the transfers.
      assertEquals(await redis.command("PUBSUB", "SHARDCHANNELS"), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
