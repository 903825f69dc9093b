/**
 * An origin body of no stated length (chunked) is spooled as it comes, not
 * gathered in memory: the daemon's private memory (beside the object's blob)
 * grows by far less than the body; a body longer than the daemon
 * can store is refused typed, saying what to do; downstream daemons still
 * take it from the one that downloaded it.
 */
import { CapacityExceededError, connect, StoreUnavailableError } from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { type ClusterDaemon, startCluster } from "./cluster_daemons.ts";
import { startCountingOrigin } from "./counting_origin.ts";

/** A process's private memory now (`RssAnon`: its heaps, not the shared memory of blobs), in bytes. */
async function privateRss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/RssAnon:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function fetchBody(daemon: ClusterDaemon, url: string) {
  await using client = await connect(daemon.socket);
  const response = await client.fetch(url);
  return { response, body: new Uint8Array(await response.arrayBuffer()) };
}

Deno.test("a chunked origin body: spooled, not gathered in memory; taken by a second daemon from the first", async () => {
  const body = pattern(96 << 20, 41);
  await using origin = startCountingOrigin({ body, chunked: true });
  await using cluster = await startCluster(["a", "b"], { extra: ["--capacity", "128MiB"] });
  const [a, b] = cluster.daemons as [ClusterDaemon, ClusterDaemon];
  // Warmed up first: the read-through and the socket's code paths loaded.
  {
    await using small = startCountingOrigin({ body: pattern(1 << 20, 42), chunked: true });
    await fetchBody(a, small.url);
  }
  const before = await privateRss(a.process.pid);
  let peak = before;
  let fetching = true;
  const sampling = (async () => {
    while (fetching) {
      peak = Math.max(peak, await privateRss(a.process.pid));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const { response, body: got } = await fetchBody(a, origin.url).finally(() => fetching = false);
  await sampling;
  const grown = peak - before;
  assertEquals(response.status, 200);
  assert(sameBytes(got, body), "the body through a");
  // The blob is shared memory; gathering the body would add 200 MiB of heap; spooled, under 10.
  assert(grown < body.length / 4, `a's private memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
  const second = await fetchBody(b, origin.url);
  assert(sameBytes(second.body, body), "the body through b");
  // b revalidated (the response has no freshness) and took the bytes from a.
  assertEquals(origin.requests.map((request) => request.status), [200, 304]);
  assertEquals(await b.metric("packice_origin_bytes_total"), 0);
});

Deno.test("a chunked origin body longer than the daemon can store, or cut off: typed errors, nothing stored", async () => {
  await using origin = startCountingOrigin({ body: pattern(40 << 20, 43), chunked: true });
  await using cut = startCountingOrigin({
    body: pattern(8 << 20, 44),
    chunked: true,
    cutAfter: 3 << 20,
  });
  await using cluster = await startCluster(["solo"], { extra: ["--capacity", "32MiB"] });
  const daemon = cluster.daemons[0]!;
  await using client = await connect(daemon.socket);
  await assertRejects(
    () => client.fetch(origin.url),
    CapacityExceededError,
    "of no stated length, runs past 33554432 bytes",
  );
  await assertRejects(() => client.fetch(cut.url), StoreUnavailableError, "cut off");
  assertEquals((await client.list()).length, 0);
  assertEquals(await daemon.metric("packice_origin_failures_total"), 1);
});
