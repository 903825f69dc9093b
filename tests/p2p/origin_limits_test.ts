/**
 * Origin read-throughs count in a daemon's limits as fetches from other
 * daemons do: each object's size in `--transfer-budget` before its blob
 * exists (a larger one refused typed, others waiting their turn), and every
 * byte, from the origin or pulled from the downloader, in `--max-download-rate`.
 */
import { CapacityExceededError, connect, originId } from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { eventually } from "../helpers/eventually.ts";
import { type ClusterDaemon, startCluster } from "./cluster_daemons.ts";
import { startCountingOrigin } from "./counting_origin.ts";

const RATE = 12e6;

/** Reads `url` through the daemon's socket; checks the body. */
async function fetchChecked(daemon: ClusterDaemon, url: string, expected: Uint8Array) {
  await using client = await connect(daemon.socket);
  const response = await client.fetch(url);
  const body = new Uint8Array(await response.arrayBuffer());
  assertEquals(response.status, 200);
  assert(sameBytes(body, expected), `the body through ${daemon.node}`);
}

/**
 * The rate at which a daemon's counter `metric` grows while `running` runs,
 * between 20% and 80% of its growth: a transfer's steady rate, without its
 * start and end (and the client's read), which a loaded machine stretches.
 */
async function steadyRate(daemon: ClusterDaemon, metric: string, running: Promise<unknown>) {
  const samples: [number, number][] = [];
  let done = false;
  running.finally(() => done = true).catch(() => {});
  while (!done) {
    samples.push([performance.now(), await daemon.metric(metric)]);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await running;
  const base = samples[0]![1];
  const total = (await daemon.metric(metric)) - base;
  const from = samples.find(([, value]) => value - base >= 0.2 * total)!;
  const to = samples.findLast(([, value]) => value - base <= 0.8 * total)!;
  assert(to[0] - from[0] > 500, `${metric} grew over ${to[0] - from[0]} ms only`);
  return (to[1] - from[1]) / ((to[0] - from[0]) / 1000);
}

Deno.test("--max-download-rate holds origin downloads, and pieces pulled from the downloader, within 10%", async () => {
  const body = pattern(24 << 20, 31);
  const shared = pattern(32 << 20, 34);
  // The origin sends 4x the limit: only the daemons' own limit holds them back.
  await using origin = startCountingOrigin({ body, rate: 4 * RATE });
  await using sharedOrigin = startCountingOrigin({ body: shared, rate: 4 * RATE });
  await using cluster = await startCluster(["a"]);
  const a = cluster.daemons[0]!;
  const b = await cluster.add("b", ["--max-download-rate", `${RATE / 1e6}MB`]);
  // b alone: the downloader, at its limit.
  const alone = await steadyRate(
    b,
    "packice_origin_bytes_total",
    fetchChecked(b, origin.url, body),
  );
  assert(Math.abs(alone / RATE - 1) <= 0.1, `downloader: ${(alone / 1e6).toFixed(1)} MB/s`);
  // a downloads (no limit); b follows it from its 2nd MiB on, and pulls pieces at its limit.
  const leading = fetchChecked(a, sharedOrigin.url, shared);
  await eventually(() => sharedOrigin.sent >= 2 << 20, "a's download began", {
    timeout: 10_000,
    interval: 5,
  });
  const following = await steadyRate(
    b,
    "packice_origin_peer_bytes_total",
    fetchChecked(b, sharedOrigin.url, shared),
  );
  await leading;
  assertEquals(await b.metric("packice_origin_downstream_total"), 1);
  assertEquals(await b.metric("packice_origin_peer_bytes_total"), shared.length);
  assertEquals(sharedOrigin.requests.length, 1, JSON.stringify(sharedOrigin.requests));
  assert(
    Math.abs(following / RATE - 1) <= 0.1,
    `follower: ${(following / 1e6).toFixed(1)} MB/s`,
  );
});

Deno.test("--transfer-budget holds origin downloads: a larger one refused typed, two that fit only one at a time wait their turn", async () => {
  const big = pattern(9 << 20, 32);
  const body = pattern(6 << 20, 33);
  await using bigOrigin = startCountingOrigin({ body: big });
  await using origin = startCountingOrigin({ body, rate: 8e6 });
  await using cluster = await startCluster(["solo"], { extra: ["--transfer-budget", "8MiB"] });
  const daemon = cluster.daemons[0]!;
  await using client = await connect(daemon.socket);
  await assertRejects(
    () => client.fetch(bigOrigin.url),
    CapacityExceededError,
    "raise --transfer-budget",
  );
  const urls = [`${origin.url}?one`, `${origin.url}?two`];
  // Both at once: 12 MiB in a budget of 8 MiB, so never two blobs at a time; the one
  // waiting for room says its size already.
  let fetching = true;
  let both = 0;
  let blobs = 0;
  let waiting = 0;
  const watch = (async () => {
    while (fetching) {
      const infos = await Promise.all(
        urls.map((url) => client.stat(originId(url)).catch(() => undefined)),
      );
      // Its metadata is there once its blob is made.
      const made = infos.filter((info) => info?.state === "CREATING" && info.meta.origin);
      if (made.length === 2) both++;
      if (made.length > 0) blobs++;
      if (
        infos.some((info) =>
          info?.state === "CREATING" && !info.meta.origin && info.size === body.length
        )
      ) waiting++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    await Promise.all(urls.map((url) => fetchChecked(daemon, url, body)));
  } finally {
    fetching = false;
    await watch;
  }
  assert(blobs > 10, `an object under way was seen ${blobs} times`);
  assert(waiting > 0, "the object waiting for room was seen with its size");
  assertEquals(both, 0, "two objects of 6 MiB on their way at once in 8 MiB");
  assertEquals(origin.requests.length, 2);
});
