/**
 * Redis restarted empty under a running cluster: each daemon announces
 * again what it holds, so the objects put on one, its fetched copies and
 * its read-throughs stay reachable from the others, and no read-through
 * goes to the origin again for an object the cluster holds.
 */
import { connect } from "../../mod.ts";
import { assertEquals } from "../helpers/assert.ts";
import { clusterDir, startClusterDaemons } from "../helpers/cluster.ts";
import { eventually } from "../helpers/eventually.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { startCountingOrigin } from "./counting_origin.ts";

Deno.test(
  "after Redis restarts empty, the others find again what a daemon holds: no second origin download",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using dir = await clusterDir();
    await using origin = startCountingOrigin({ body: new Uint8Array(1 << 20).fill(9) });
    await using daemons = await startClusterDaemons(redis.url, dir.path, ["a", "b", "c"]);
    const [a, b, c] = daemons;
    await using atA = await connect(a.socket);
    await using atB = await connect(b.socket);
    await using atC = await connect(c.socket);
    await atA.put("put on a", { id: "put-on-a" });
    const fetched = await atA.fetch(origin.url);
    await fetched.bytes();
    const originId = fetched.headers.get("packice-object")!;
    using _copy = await atB.get("put-on-a");

    await redis.stop();
    await redis.restart();

    // c and b hold nothing of these: each answer comes from a (or b) once it announced again.
    const found = (id: string, at = atC) => async () =>
      await at.get(id).then((handle) => {
        handle.close();
        return true;
      }, () => false);
    await eventually(found("put-on-a"), "c finds put-on-a");
    await eventually(found(originId, atB), "b finds the read-through of a");
    assertEquals((await (await atC.fetch(origin.url)).bytes()).length, 1 << 20);
    // Revalidated (the origin's ETag grants no freshness), not downloaded again.
    assertEquals(origin.requests.map((request) => request.status), [200, 304]);
  },
);
