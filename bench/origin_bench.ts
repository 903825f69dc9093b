/**
 * One download per cluster: 7 daemons (embedded directory) fetch one object
 * through the origin at once (`client.fetch`). The origin's egress against
 * the object's size (target <= 1.05x; without the cluster's single flight
 * it is 7x). Per-daemon finish times are in the line, and one daemon's
 * fetch alone from the origin, measured first in the same run.
 *
 * Size and the origin's rate: `PACKICE_ORIGIN_MIB` (default 256) and
 * `PACKICE_ORIGIN_RATE` (bytes a second per response, default 200e6); on a
 * loaded machine use less and say so.
 *
 * Usage: deno run -A bench/origin_bench.ts
 */
import { connect } from "../mod.ts";
import { pattern } from "../tests/helpers/cluster.ts";
import { startCluster } from "../tests/p2p/cluster_daemons.ts";
import { startCountingOrigin } from "../tests/p2p/counting_origin.ts";
import { report } from "./stats.ts";

const SIZE = Number(Deno.env.get("PACKICE_ORIGIN_MIB") ?? "256") << 20;
const RATE = Number(Deno.env.get("PACKICE_ORIGIN_RATE") ?? "200e6");
const DAEMONS = 7;

const payload = pattern(SIZE, 17);
await using origin = startCountingOrigin({ body: payload, rate: RATE });
const nodes = Array.from({ length: DAEMONS + 1 }, (_, i) => `d${i}`);
await using cluster = await startCluster(nodes, {
  extra: ["--capacity", `${Math.ceil((2 * SIZE) / (1 << 20)) + 64}MiB`],
});
for (let tries = 0; tries < 400; tries++) {
  const views = await Promise.all(cluster.daemons.map((daemon) => daemon.members()));
  if (views.every((view) => view.filter((m) => m.state === "alive").length === nodes.length)) {
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
}

async function fetchThrough(socket: string, url: string, started: number): Promise<number> {
  await using client = await connect(socket);
  const response = await client.fetch(url);
  let size = 0;
  for await (const chunk of response.body!) size += chunk.length;
  if (response.status !== 200 || size !== SIZE) throw new Error(`Got ${size} bytes`);
  return performance.now() - started;
}

// One daemon alone, from the origin alone.
let started = performance.now();
const aloneMs = await fetchThrough(
  cluster.daemons[DAEMONS]!.socket,
  `${origin.url}?alone`,
  started,
);
const before = origin.sent;
started = performance.now();
const finishes = await Promise.all(
  cluster.daemons.slice(0, DAEMONS).map((daemon) =>
    fetchThrough(daemon.socket, origin.url, started)
  ),
);
const egress = origin.sent - before;
report({
  bench: "origin_single_flight_egress",
  object_mib: SIZE / (1 << 20),
  origin_rate_bytes_per_s: RATE,
  daemons: DAEMONS,
  origin_requests: origin.requests.length - 1,
  origin_egress_mib: egress / (1 << 20),
  alone_ms: aloneMs,
  last_finish_ms: Math.max(...finishes),
  finish_ms: finishes.map((ms) => Math.round(ms)),
  ratio: egress / SIZE,
  target: 1.05,
});
