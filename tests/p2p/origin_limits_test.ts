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
import { fittedRate, samplePoints, sampleWhile } from "../helpers/steady_rate.ts";

const RATE = 12e6;

/** Reads `url` through the daemon's socket; checks the body. */
async function fetchChecked(daemon: ClusterDaemon, url: string, expected: Uint8Array) {
  await using client = await connect(daemon.socket);
  const response = await client.fetch(url);
  const body = new Uint8Array(await response.arrayBuffer());
  assertEquals(response.status, 200);
  assert(sameBytes(body, expected), `the body through ${daemon.node}`);
}

/** Measurements of one limit: the first precise one is asserted on. */
const ATTEMPTS = 3;
/** How often a daemon's counter is read, in ms: often enough for a line, not a load. */
const SAMPLE_MS = 50;

/**
 * The steady rate of `daemon`'s counter `metric` while `running` runs, over
 * the middle three quarters of its bytes: a least-squares line through its
 * reads (see `fittedRate`), those answered far later than most left out,
 * and whether it is precise; with `ahead`, only while the bytes the
 * follower pulls were there to pull: the origin had sent at least 8 MiB
 * (two pieces) more than it had pulled, or all, at every sample in the
 * measure, so that the follower's limit, not its downloader, set the pace.
 *
 * The daemon's own counter, not the origin's record of what it sent: on a
 * loaded machine the socket's buffers between the two grow (a downloader
 * that reads in bursts after a stall makes the kernel grow its receive
 * buffer), and the origin then sends faster than the daemon takes (16.6
 * MB/s seen at a limit of 12).
 */
async function limitRate(
  daemon: ClusterDaemon,
  metric: string,
  total: number,
  running: Promise<unknown>,
  ahead?: { readonly sent: number },
): Promise<{ rate: number; precise: boolean }> {
  const sent: number[] = [];
  const samples = await sampleWhile(
    () => {
      if (ahead !== undefined) sent.push(ahead.sent);
      return daemon.metric(metric);
    },
    running,
    SAMPLE_MS,
  );
  const [low, high] = [total / 8, total - total / 8];
  const { rate, precise } = fittedRate(samplePoints(samples), low, high);
  // The first call read the base; each sample's call came after it.
  const fed = ahead === undefined ||
    samples.every((sample, i) =>
      sample.bytes < low || sample.bytes > high ||
      sent[i + 1]! >= Math.min(total, sample.bytes + (8 << 20))
    );
  return { rate, precise: precise && fed };
}

Deno.test("--max-download-rate holds origin downloads, and pieces pulled from the downloader, within 10%", async () => {
  const body = pattern(32 << 20, 31);
  const shared = pattern(48 << 20, 34);
  // The origin sends 4x the limit: only the daemons' own limit holds them back.
  await using origin = startCountingOrigin({ body, rate: 4 * RATE });
  await using sharedOrigin = startCountingOrigin({ body: shared, rate: 4 * RATE });
  await using cluster = await startCluster(["a"]);
  const a = cluster.daemons[0]!;
  const b = await cluster.add("b", ["--max-download-rate", `${RATE / 1e6}MB`]);
  // On a loaded machine a daemon answers some metrics requests late, or a downloader falls
  // behind its follower: such a measure is taken again, on a URL of its own.
  let alone: number | undefined;
  let following: number | undefined;
  let followed = 0;
  for (
    let attempt = 0;
    attempt < ATTEMPTS && (alone === undefined || following === undefined);
    attempt++
  ) {
    // b alone: the downloader, at its limit.
    if (alone === undefined) {
      const url = `${origin.url}?alone-${attempt}`;
      const measure = await limitRate(
        b,
        "packice_origin_bytes_total",
        body.length,
        fetchChecked(b, url, body),
      );
      if (measure.precise) alone = measure.rate;
    }
    if (following !== undefined) continue;
    // a downloads (no limit); b follows it from its 2nd MiB on, and pulls pieces at its limit.
    const url = `${sharedOrigin.url}?shared-${attempt}`;
    const sentBefore = sharedOrigin.sent;
    const leading = fetchChecked(a, url, shared);
    await eventually(() => sharedOrigin.sent - sentBefore >= 2 << 20, "a's download began", {
      timeout: 10_000,
      interval: 5,
    });
    const measure = await limitRate(
      b,
      "packice_origin_peer_bytes_total",
      shared.length,
      fetchChecked(b, url, shared),
      {
        get sent() {
          return sharedOrigin.sent - sentBefore;
        },
      },
    );
    await leading;
    followed++;
    if (measure.precise) following = measure.rate;
  }
  assert(alone !== undefined, `downloader: no precise measure in ${ATTEMPTS}`);
  assert(Math.abs(alone / RATE - 1) <= 0.1, `downloader: ${(alone / 1e6).toFixed(1)} MB/s`);
  assert(following !== undefined, `follower: no precise measure in ${ATTEMPTS}`);
  assert(Math.abs(following / RATE - 1) <= 0.1, `follower: ${(following / 1e6).toFixed(1)} MB/s`);
  // Each URL went to the origin once: b followed a every time, and pulled every byte from it.
  assertEquals(await b.metric("packice_origin_downstream_total"), followed);
  assertEquals(await b.metric("packice_origin_peer_bytes_total"), followed * shared.length);
  assertEquals(sharedOrigin.requests.length, followed, JSON.stringify(sharedOrigin.requests));
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
  const made = [0, 0];
  let waiting = 0;
  const watch = (async () => {
    while (fetching) {
      const infos = await Promise.all(
        urls.map((url) => client.stat(originId(url)).catch(() => undefined)),
      );
      // Its metadata is there once its blob is made.
      const under = infos.map((info) => info?.state === "CREATING" && info.meta.origin);
      if (under.every(Boolean)) both++;
      under.forEach((yes, i) => made[i]! += yes ? 1 : 0);
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
  // Each object under way was seen (however few the looks a loaded machine allows), and the
  // one waiting for room: the watch saw both sides of every turn it judges.
  assert(made.every((times) => times >= 2), `each object under way seen ${made} times`);
  assert(waiting > 0, "the object waiting for room was seen with its size");
  assertEquals(both, 0, "two objects of 6 MiB on their way at once in 8 MiB");
  assertEquals(origin.requests.length, 2);
});
