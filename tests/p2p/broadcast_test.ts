import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemon } from "../helpers/cluster.ts";
import { startProxy } from "../helpers/proxy.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { connect } from "../../mod.ts";

const SIZE = 32 << 20;
/** Room for the object and for endgame scratch pieces. */
const BUDGET = 2 * SIZE;
const CAP = [
  "--max-upload-rate",
  "32MB",
  "--max-uploads",
  "2",
  "--transfer-budget",
  `${BUDGET >> 20}MiB`,
];

Deno.test(
  "a broadcast to 5 daemons is a pipeline: the holder uploads at most 1.5x the object, one daemon dies midway, memory stays in the budget",
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
      const bytes = pattern(SIZE, 5);
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
      const survivors = receivers.slice(0, 4);
      // Objects live in memfds (RSS's shared part, counted once per mapping):
      // what else a daemon's memory grows by stays in its transfer budget.
      const base = survivors.map((daemon) => unshared(daemon.pid));
      const peak = [...base];
      const sampling = setInterval(() => {
        survivors.forEach((daemon, i) => peak[i] = Math.max(peak[i]!, unshared(daemon.pid)));
      }, 20);
      const started = performance.now();
      const finished = await Promise.allSettled(receivers.map(async (daemon) => {
        await using client = await connect(daemon.socket);
        using handle = await client.get("model");
        assert(sameBytes(handle.bytes, bytes), `bytes on ${daemon.node}`);
        return (performance.now() - started) / 1000;
      }));
      await killed;
      clearInterval(sampling);
      const growth = peak.map((bytes, i) => bytes - base[i]!);
      const times = finished.slice(0, 4).map((result) => {
        assertEquals(result.status, "fulfilled", String((result as PromiseRejectedResult).reason));
        return (result as PromiseFulfilledResult<number>).value;
      });
      assert(killed !== undefined, "r5 was killed midway");
      for (const [i, bytes] of growth.entries()) {
        assert(
          bytes <= BUDGET,
          `${survivors[i]!.node} grew by ${bytes >> 20} MiB besides its objects, over its ${
            BUDGET >> 20
          } MiB budget`,
        );
      }
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

/** The resident set of process `pid` but its shared memory (its objects' memfds), in bytes. */
function unshared(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return (kb("RssAnon") + kb("RssFile")) * 1024;
}
