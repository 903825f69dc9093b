/**
 * While Redis is away a daemon on it still answers its status and metrics
 * (`packice_directory_available 0`), and an HTTP client still connects to
 * it and reads what it holds: the count of objects is the one Redis gave last.
 */
import { connect } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { clusterDir, startClusterDaemon, TOKEN } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";

Deno.test(
  "with Redis stopped, a daemon's status, metrics and HTTP reads still answer",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await using dir = await clusterDir();
    await using daemon = await startClusterDaemon(redis.url, dir.path, "a");
    {
      await using client = await connect(daemon.socket);
      await client.put("kept", { id: "kept" });
    }
    const scrape = () =>
      fetch(`${daemon.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    await (await scrape()).body?.cancel();
    await redis.stop();

    const metrics = await scrape();
    const text = await metrics.text();
    assertEquals(metrics.status, 200, text);
    assert(text.includes("packice_directory_available 0\n"), text);
    assert(text.includes("packice_objects 1\n"), text);
    const status = await runCli(["status", "--json", "--target", daemon.socket]);
    assertEquals([status.code, JSON.parse(status.stdout).stats.objects], [0, 1], status.stderr);
    await using overHttp = await connect(daemon.url, { token: TOKEN });
    using held = await overHttp.get("kept");
    assertEquals(new TextDecoder().decode(held.bytes), "kept");
  },
);
