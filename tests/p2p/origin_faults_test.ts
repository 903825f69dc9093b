/**
 * The read-through when things fail: the downloader killed mid-download
 * (another daemon takes over and resumes with Range), the origin cutting a
 * download off (resumed), and credentials for the origin never stored.
 */
import { connect, originId } from "../../mod.ts";
import { type ClusterDaemon as RedisDaemon, startClusterDaemon } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { eventually } from "../helpers/eventually.ts";
import { type ClusterDaemon, converged, startCluster, TOKEN } from "./cluster_daemons.ts";
import { ETAG, startCountingOrigin } from "./counting_origin.ts";

async function fetchBody(daemon: ClusterDaemon, url: string, init?: RequestInit) {
  await using client = await connect(daemon.socket);
  const response = await client.fetch(url, init);
  return { response, body: new Uint8Array(await response.arrayBuffer()) };
}

Deno.test("the downloader killed mid-download: another daemon takes over with a Range request", async () => {
  const body = pattern(24 << 20, 7);
  await using origin = startCountingOrigin({ body, rate: 6e6 });
  await using cluster = await startCluster(["a", "b", "c"]);
  await converged(cluster.daemons);
  const [a, b, c] = cluster.daemons as [ClusterDaemon, ClusterDaemon, ClusterDaemon];
  const first = fetchBody(a, origin.url).catch((error) => error);
  await eventually(() => origin.sent >= 6 << 20, "the origin sent 6 MiB", { timeout: 10_000 });
  const others = [b, c].map((daemon) => fetchBody(daemon, origin.url));
  await eventually(
    async () =>
      (await b.metric("packice_origin_downstream_total")) >= 1 &&
      (await c.metric("packice_origin_downstream_total")) >= 1,
    "b and c follow the download",
    { timeout: 5000, interval: 20 },
  );
  await a.signal("SIGKILL");
  for (const { response, body: got } of await Promise.all(others)) {
    assertEquals(response.status, 200);
    assert(sameBytes(got, body), "the body after the takeover");
  }
  assert((await first) instanceof Error, "the killed daemon's client saw an error");
  const full = origin.requests.filter((request) => request.range === null);
  const ranged = origin.requests.filter((request) => request.range !== null);
  assertEquals(full.length, 1, JSON.stringify(origin.requests));
  assertEquals(ranged.length, 1, JSON.stringify(origin.requests));
  assertEquals(ranged[0]!.status, 206);
  assertEquals(ranged[0]!.ifRange, ETAG);
  assert(origin.sent < 1.5 * body.length, `origin sent ${origin.sent} of ${body.length}`);
  const resumes = (await b.metric("packice_origin_resumes_total")) +
    (await c.metric("packice_origin_resumes_total"));
  assertEquals(resumes, 1);
});

Deno.test("the origin cutting a download off: resumed from the first missing piece", async () => {
  const body = pattern(20 << 20, 9);
  await using origin = startCountingOrigin({ body, cutAfter: 10 << 20 });
  await using cluster = await startCluster(["solo"]);
  const daemon = cluster.daemons[0]!;
  const { response, body: got } = await fetchBody(daemon, origin.url);
  assertEquals(response.status, 200);
  assert(sameBytes(got, body), "the body after the resume");
  assertEquals(origin.requests.map((request) => request.status), [200, 206]);
  assertEquals(origin.requests[1]!.range, `bytes=${8 << 20}-`);
  assert((await daemon.metric("packice_origin_failures_total")) >= 1);
  assertEquals(await daemon.metric("packice_origin_resumes_total"), 1);
  assertEquals(await daemon.metric("packice_origin_trips_total"), 2);
});

Deno.test("an Authorization for the origin reaches it and is never stored nor logged", async () => {
  const secret = "Bearer s3cret-origin-token";
  const body = pattern(1 << 20, 11);
  await using origin = startCountingOrigin({ body, authorization: secret });
  await using cluster = await startCluster(["solo"], { extra: ["--log-level", "debug"] });
  const daemon = cluster.daemons[0]!;
  await using client = await connect(daemon.socket);
  // Without it: the origin's 401 is answered, and not shared.
  const refused = await client.fetch(origin.url);
  assertEquals(refused.status, 401);
  await refused.body?.cancel();
  const response = await client.fetch(origin.url, { headers: { authorization: secret } });
  assertEquals(response.status, 200);
  assert(sameBytes(new Uint8Array(await response.arrayBuffer()), body));
  const id = response.headers.get("packice-object")!;
  const info = await client.stat(id);
  assertEquals((info.meta.origin as { status: number }).status, 200);
  assert(!JSON.stringify(info.meta).includes("s3cret"), JSON.stringify(info.meta));
  // Over HTTP too, as Packice-Origin-Authorization beside the daemon's own token.
  const http = await fetch(`${daemon.url}/v1/fetch?url=${encodeURIComponent(origin.url)}`, {
    headers: { authorization: `Bearer ${TOKEN}`, "packice-origin-authorization": secret },
  });
  assertEquals(http.status, 200);
  assertEquals(http.headers.get("packice-object"), id);
  assert(sameBytes(new Uint8Array(await http.arrayBuffer()), body));
  for (const object of await client.list()) {
    assert(!JSON.stringify(object.meta).includes("s3cret"), JSON.stringify(object.meta));
  }
  // The second fetch, stale by its headers, was revalidated: 304, no body again.
  assertEquals(origin.requests.map((request) => request.status), [401, 200, 304]);
  assertEquals(origin.requests.map((request) => request.authorized), [false, true, true]);
  assert(!daemon.stderr().includes("s3cret"), "the daemon's log");
});

Deno.test(
  "with --redis: the downloader killed, its claim expires, another daemon resumes with Range",
  redisTestOptions,
  async () => {
    const body = pattern(24 << 20, 13);
    await using origin = startCountingOrigin({ body, rate: 6e6 });
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-origin-redis-kill-" });
    try {
      const [a, b] = await Promise.all(
        ["k1", "k2"].map((node) => startClusterDaemon(redis.url, dir, node, "takeover")),
      ) as [RedisDaemon, RedisDaemon];
      try {
        const first = (async () => {
          await using client = await connect(a.socket);
          await (await client.fetch(origin.url)).arrayBuffer();
        })().catch((error) => error);
        await eventually(() => origin.sent >= 6 << 20, "the origin sent 6 MiB", {
          timeout: 10_000,
        });
        const second = (async () => {
          await using client = await connect(b.socket);
          return new Uint8Array(await (await client.fetch(origin.url)).arrayBuffer());
        })();
        await eventually(
          async () => ((await b.metrics())["origin_downstream_total"] ?? 0) >= 1,
          "b follows the download",
          { timeout: 5000, interval: 20 },
        );
        await a.stop("SIGKILL");
        assert(sameBytes(await second, body), "the body after the takeover");
        assert((await first) instanceof Error);
        assertEquals(origin.requests.filter((request) => request.range === null).length, 1);
        const ranged = origin.requests.filter((request) => request.range !== null);
        assertEquals(ranged.map((request) => request.status), [206]);
      } finally {
        await Promise.all([a, b].map((daemon) => daemon.stop()));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("without a validator a resume asks for the whole body again and checks what it held", async () => {
  const body = pattern(20 << 20, 21);
  await using cluster = await startCluster(["solo"]);
  const daemon = cluster.daemons[0]!;
  {
    await using origin = startCountingOrigin({ body, cutAfter: 10 << 20, etag: false });
    const { response, body: got } = await fetchBody(daemon, origin.url);
    assertEquals(response.status, 200);
    assert(sameBytes(got, body), "the body after the resume");
    assertEquals(origin.requests.map((request) => request.range), [null, null]);
  }
  // Other bytes behind the same URL after the cut: refused, nothing stored.
  const other = pattern(20 << 20, 22);
  await using changing = startCountingOrigin({
    body,
    cutAfter: 10 << 20,
    etag: false,
    then: other,
  });
  await using client = await connect(daemon.socket);
  const error = await client.fetch(changing.url).then(() => undefined, (error) => error);
  assertEquals(error?.code, "CONFLICT", String(error));
  assertEquals(await client.has(originId(changing.url)), false);
});

Deno.test(
  "with --redis: Redis down during a broadcast from the origin, the transfers running finish",
  redisTestOptions,
  async () => {
    const body = pattern(24 << 20, 23);
    await using origin = startCountingOrigin({ body, rate: 12e6 });
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-origin-redis-down-" });
    try {
      const daemons = await Promise.all(
        ["d1", "d2", "d3"].map((node) => startClusterDaemon(redis.url, dir, node, "down")),
      );
      try {
        const read = (daemon: RedisDaemon) =>
          (async () => {
            await using client = await connect(daemon.socket);
            return new Uint8Array(await (await client.fetch(origin.url)).arrayBuffer());
          })();
        const first = read(daemons[0]!);
        await eventually(() => origin.sent >= 4 << 20, "the origin sent 4 MiB", {
          timeout: 10_000,
        });
        const others = daemons.slice(1).map(read);
        await eventually(
          async () => {
            const counts = await Promise.all(
              daemons.slice(1).map(async (daemon) =>
                (await daemon.metrics())["origin_downstream_total"] ?? 0
              ),
            );
            return counts.every((count) => count >= 1);
          },
          "d2 and d3 follow the download",
          { timeout: 5000, interval: 20 },
        );
        await redis.stop("SIGKILL");
        assert(origin.sent < body.length, "Redis went down mid-download");
        for (const got of await Promise.all([first, ...others])) {
          assert(sameBytes(got, body), "a body after Redis went down");
        }
        assertEquals(origin.requests.length, 1, JSON.stringify(origin.requests));
      } finally {
        await Promise.all(daemons.map((daemon) => daemon.stop()));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
