import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { spawnReady } from "../helpers/ready_child.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { RedisLeaseStore } from "../../backends/redis/mod.ts";
import { AlreadyExistsError, connect, NotFoundError } from "../../mod.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

/** `packice serve --impl mem --redis ...` on a socket in `dir`, once it listens. */
async function serve(url: string, dir: string, node: string) {
  const socket = `${dir}/${node}.sock`;
  const daemon = await spawnReady(
    ["run", "-A", CLI, "serve", "--impl", "mem", "--capacity", "16MiB", "--socket", socket]
      .concat(["--redis", url, "--namespace", "daemons", "--node", node, "--log-level", "error"]),
    "Packice listening on",
    `Daemon ${node}`,
  );
  return { socket, stop: daemon.stop };
}

Deno.test(
  "daemons with --redis share one namespace; a killed one's CREATE lease expires",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-daemons-" });
    try {
      const one = await serve(redis.url, dir, "one");
      const two = await serve(redis.url, dir, "two");
      const first = await connect(one.socket);
      await using second = await connect(two.socket);

      await first.put("made on one", { id: "shared" });
      const listed = await second.list();
      assertEquals(listed.map((info) => [info.id, info.holders]), [
        ["shared", [{ node: "one", address: `unix://${one.socket}` }]],
      ]);
      await assertRejects(() => second.get("shared"), NotFoundError, "not held by this peer");

      // An unfinished object with a CREATE lease of 1.5 s, and its daemon killed.
      const writer = await first.create(4, { id: "unfinished", ttl: 1500 });
      await assertRejects(() => second.put("late", { id: "unfinished" }), AlreadyExistsError);
      assertEquals((await one.stop("SIGKILL")).signal, "SIGKILL");
      await writer.close().catch(() => {});
      await first.close().catch(() => {});
      await eventually(
        () => second.put("mine now", { id: "unfinished" }).then(() => true, () => false),
        "the CREATE lease of the killed daemon expires",
        { interval: 25 },
      );

      // A daemon stopped by SIGTERM leaves the namespace: its node, and the objects only it held.
      assertEquals((await two.stop("SIGTERM")).code, 0);
      assertEquals(await redis.command("ZSCORE", "{daemons}:alive", "two"), null);
      assertEquals(await redis.command("HEXISTS", "{daemons}:nodes", "two"), 0);
      await using observer = await RedisLeaseStore.connect({
        url: redis.url,
        namespace: "daemons",
      });
      const left = await observer.list();
      assert(left.every((info) => info.holders?.every((holder) => holder.node !== "two")));
      assertEquals(left.map((info) => info.id), ["shared"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
