/**
 * A daemon keeps serving reads of the objects it holds while Redis restarts,
 * goes away or hangs, without waiting for Redis timeouts; what needs the
 * cluster fails fast meanwhile.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";
import { spawnReady } from "../../helpers/ready_child.ts";
import { redisTestOptions, startRedis } from "../../helpers/redis_server.ts";
import { connect, StoreUnavailableError } from "../../../mod.ts";

const CLI = new URL("../../../cli.ts", import.meta.url).pathname;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
/** Well under the daemon's Redis command timeout (2 s). */
const BOUND_MS = 1000;
/** Longer than the daemon's longest reconnection delay (5 s, +20% jitter), and a connection. */
const RECONNECT_MS = 8000;

Deno.test(
  "gets of held objects go on while Redis restarts, is down or hangs; CREATE fails fast",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-outage-" });
    const socket = `${dir}/a.sock`;
    const http = `127.0.0.1:${freePort()}`;
    const daemon = await spawnReady(
      ["run", "-A", CLI, "serve", "--impl", "mem", "--capacity", "16MiB", "--socket", socket]
        .concat(["--http", http, "--redis", redis.url, "--namespace", "reads"])
        .concat(["--token", "outage-test-token"])
        .concat(["--log-level", "error"]),
      "Packice listening on",
      "Daemon",
    );
    try {
      await using client = await connect(socket);
      const token = "outage-test-token";
      const ids = ["one", "two", "three"];
      for (const id of ids) await client.put(`bytes of ${id}`, { id });

      let gets = 0;
      let slowest = 0;
      const failures: string[] = [];
      let streaming = true;
      const stream = (async () => {
        while (streaming) {
          const id = ids[gets % ids.length]!;
          const started = performance.now();
          try {
            // Over the Unix socket, and over HTTP: a GET, and a HEAD answered from the directory.
            using handle = await client.get(id);
            if (new TextDecoder().decode(handle.bytes) !== `bytes of ${id}`) {
              failures.push(`${id}: wrong bytes`);
            }
            const method = gets % 2 === 0 ? "GET" : "HEAD";
            const response = await fetch(`http://${http}/v1/objects/${id}`, {
              method,
              headers: { authorization: `Bearer ${token}` },
            });
            const body = await response.text();
            if (response.status !== 200 || (method === "GET" && body !== `bytes of ${id}`)) {
              failures.push(`${id}: HTTP ${method} answered ${response.status} ${body}`);
            }
          } catch (error) {
            failures.push(`${id}: ${(error as Error).message}`);
          }
          slowest = Math.max(slowest, performance.now() - started);
          gets++;
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      })();

      const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
      for (const signal of ["SIGTERM", "SIGKILL", "SIGTERM", "SIGKILL"] as const) {
        await pause(150);
        await redis.stop(signal);
        await pause(250);
        if (signal === "SIGKILL") {
          const started = performance.now();
          await assertRejects(() => client.put("new", { id: "new" }), StoreUnavailableError);
          assert(performance.now() - started < BOUND_MS, "CREATE fails fast");
        }
        await redis.restart();
      }
      // Up but not answering, once the daemon is back in it: it meets the hang on a read.
      // Restarts that its attempts missed may have backed it off to the longest delay
      // (5 s, +20% jitter): the wait is longer than that.
      await eventually(
        () => client.put("back", { id: "back" }).then(() => true, () => false),
        "the daemon is back in Redis",
        { timeout: RECONNECT_MS },
      );
      Deno.kill(redis.pid!, "SIGSTOP");
      await pause(2500);
      Deno.kill(redis.pid!, "SIGCONT");
      await eventually(
        () => client.put("after", { id: "after" }).then(() => true, () => false),
        "the daemon is back in Redis again",
        { timeout: RECONNECT_MS },
      );
      streaming = false;
      await stream;

      assertEquals(failures, []);
      assert(gets > 100, `a stream of gets: ${gets}`);
      assert(slowest < BOUND_MS, `no get waited for Redis: the slowest took ${slowest} ms`);
    } finally {
      await daemon.stop("SIGTERM");
      await Deno.remove(dir, { recursive: true });
    }
  },
);
