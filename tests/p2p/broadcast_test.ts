import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemon } from "../helpers/cluster.ts";
import { startProxy } from "../helpers/proxy.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { connect } from "../../mod.ts";

const CAP = ["--max-upload-rate", "32MB", "--max-uploads", "2"];

Deno.test(
  "a broadcast to 5 daemons is a pipeline: the holder uploads at most 1.5x the object, one daemon dies midway",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-broadcast-" });
    try {
      await using holder = await startClusterDaemon(redis.url, dir, "h", "cluster", CAP);
      const nodes = ["r1", "r2", "r3", "r4", "r5"];
      const receivers = await Promise.all(
        nodes.map((node) => startClusterDaemon(redis.url, dir, node, "cluster", CAP)),
      );
      await using _stop = {
        [Symbol.asyncDispose]: async () => void await Promise.all(receivers.map((r) => r.stop())),
      };
      const bytes = pattern(32 << 20, 5);
      {
        await using client = await connect(holder.socket);
        await client.put(bytes, { id: "model" });
      }
      // The holder's uploads counted through a proxy; r5 is killed once it has sent 16 MiB.
      let uploaded = 0;
      const victim = receivers[4]!;
      let killed: Promise<unknown> | undefined;
      await using counting = startProxy(holder.url, {
        onBytes: (sent) => {
          uploaded = sent;
          if (sent >= 16 << 20) killed ??= victim.stop("SIGKILL");
        },
      });
      await redis.command("HSET", "cluster:dir:{model}", "@h", counting.url);
      const started = performance.now();
      const finished = await Promise.allSettled(receivers.map(async (daemon) => {
        await using client = await connect(daemon.socket);
        using handle = await client.get("model");
        assert(sameBytes(handle.bytes, bytes), `bytes on ${daemon.node}`);
        return (performance.now() - started) / 1000;
      }));
      await killed;
      const times = finished.slice(0, 4).map((result) => {
        assertEquals(result.status, "fulfilled", String((result as PromiseRejectedResult).reason));
        return (result as PromiseFulfilledResult<number>).value;
      });
      assert(killed !== undefined, "r5 was killed midway");
      assert(
        uploaded <= 1.5 * bytes.length,
        `the holder uploaded ${
          (uploaded / bytes.length).toFixed(2)
        }x the object; finish times ${times}`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
