/**
 * The followers of a download whose body has no stated length pull its
 * pieces while the downloader spools it, not after: every daemon finishes
 * soon after the origin's last byte, and the origin sends the body once.
 */
import { connect } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { type ClusterDaemon, converged, startCluster } from "./cluster_daemons.ts";
import { startCountingOrigin } from "./counting_origin.ts";

/** Reads `url` through `daemon`; resolves with when it was done, in ms after `started`. */
async function fetchedAt(
  daemon: ClusterDaemon,
  url: string,
  expected: Uint8Array,
  started: number,
): Promise<number> {
  await using client = await connect(daemon.socket);
  const response = await client.fetch(url);
  assertEquals(response.status, 200);
  const body = new Uint8Array(await response.arrayBuffer());
  assert(sameBytes(body, expected), `the body through ${daemon.node}`);
  return performance.now() - started;
}

Deno.test("a chunked origin body: followers pull its pieces while it is spooled, under the upload limits", async () => {
  // 2.8 s from the origin; each daemon takes at most 16 MB/s, from the origin or from the others,
  // and sends at most 64 MB/s (not the bound here: what it sends is counted by that limit).
  const body = pattern(32 << 20, 71);
  await using origin = startCountingOrigin({ body, rate: 12e6, chunked: true });
  await using cluster = await startCluster(["a", "b", "c"], {
    extra: ["--max-download-rate", "16MB", "--max-upload-rate", "64MB"],
  });
  await converged(cluster.daemons);
  const started = performance.now();
  const fetching = Promise.all(
    cluster.daemons.map((daemon) => fetchedAt(daemon, origin.url, body, started)),
  );
  // With a quarter of the body still to come from the origin, the followers have pieces.
  while (origin.sent < 0.75 * body.length) await new Promise((resolve) => setTimeout(resolve, 5));
  const pulled = await Promise.all(
    cluster.daemons.map((daemon) => daemon.metric("packice_origin_peer_bytes_total")),
  );
  const early = origin.sent;
  const done = await fetching;
  assertEquals(origin.requests.map((request) => request.status), [200]);
  assert(origin.sent <= body.length, `the origin sent ${origin.sent} bytes`);
  const figures = `pulled ${pulled} bytes by the time the origin sent ${early}; done after ${
    done.map(Math.round).join(", ")
  } ms`;
  // Before, the followers pulled nothing before the whole body was in, then took it at
  // 16 MB/s: they were done 2.1 s after the downloader.
  assert(pulled.reduce((a, b) => a + b, 0) >= 8 << 20, figures);
  assert(Math.max(...done) - Math.min(...done) < 1500, figures);
  // Every byte a daemon took from another (spool pieces, then object pieces) went out
  // through the sender's upload limit.
  const sum = async (name: string) =>
    (await Promise.all(cluster.daemons.map((daemon) => daemon.metric(name))))
      .reduce((a, b) => a + b, 0);
  const fromPeers = await sum("packice_origin_peer_bytes_total");
  const uploaded = await sum("packice_http_upload_bytes_total");
  assert(uploaded >= fromPeers, `${uploaded} bytes uploaded under the limit, ${fromPeers} taken`);
});
