/**
 * Redis down in the middle of a broadcast of one object to several daemons
 * (they relay pieces to each other through partial announces in Redis): the
 * transfers already running finish, with the right bytes.
 */
import { assert } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemon } from "../helpers/cluster.ts";
import { eventually } from "../helpers/eventually.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { connect } from "../../mod.ts";

Deno.test(
  "Redis down during a broadcast to 3 daemons: the transfers running finish",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-broadcast-down-" });
    try {
      // 2 s for the object to leave the holder: a receiver's fetched bytes are counted a piece
      // (4 MiB) at a time once landed, so the first count comes a quarter of the way in, and
      // no receiver can have it all before the holder has sent it all.
      await using holder = await startClusterDaemon(redis.url, dir, "h", "down", [
        "--max-upload-rate",
        "8MB",
      ]);
      const receivers = await Promise.all(
        ["r1", "r2", "r3"].map((node) => startClusterDaemon(redis.url, dir, node, "down")),
      );
      await using _stop = {
        [Symbol.asyncDispose]: async () => void await Promise.all(receivers.map((r) => r.stop())),
      };
      const bytes = pattern(16 << 20, 61);
      {
        await using client = await connect(holder.socket);
        await client.put(bytes, { id: "model" });
      }
      const gets = receivers.map(async (daemon) => {
        await using client = await connect(daemon.socket);
        using handle = await client.get("model");
        return sameBytes(handle.bytes, bytes);
      });
      // Counted before Redis goes: `/metrics` answers 503 while it is away.
      const counts = () =>
        Promise.all(
          receivers.map(async (daemon) => (await daemon.metrics()).cluster_fetch_bytes_total ?? 0),
        );
      // The first piece landed at some receiver (not r1 alone: it may be the last to start).
      let received: number[] = [];
      await eventually(
        async () => (received = await counts()).some((count) => count >= 2 << 20),
        "a receiver received 2 MiB",
        { timeout: 10_000, interval: 20 },
      );
      await redis.stop("SIGKILL");
      assert(received.every((count) => count < bytes.length), `received by then: ${received}`);
      const right = await Promise.all(gets);
      assert(right.every(Boolean), `right bytes: ${right}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
