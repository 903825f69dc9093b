import denoJson from "../deno.json" with { type: "json" };
import type { PeerStats } from "../core/peer.ts";
import type { DaemonStatus } from "../core/status.ts";
import { formatDuration, formatJson, formatSize, table } from "./format.ts";
import { daemonStatus, open, parse, positionals, SHOW_FLAGS, TARGET_USAGE } from "./command.ts";

/** The usage text of `packice status`. */
export const STATUS_USAGE = `Usage: packice status [--json]

Shows the daemon: version, uptime, capacity and use, objects, leases, clients,
tiers, and whether it shares memory with local clients without copies.

  --json   as JSON
${TARGET_USAGE}`;

/** `packice status`. */
export async function status(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, SHOW_FLAGS);
  positionals(rest, []);
  await using client = await open(values);
  const daemon = await daemonStatus(client, values.target, "status");
  console.log(values.json ? formatJson(daemon) : describe(daemon));
  return 0;
}

function describe(daemon: DaemonStatus): string {
  const stats: PeerStats = daemon.stats;
  const free = Math.max(stats.capacity - stats.bytes, 0);
  const percent = stats.capacity > 0
    ? ` (${(100 * stats.bytes / stats.capacity).toFixed(1)}%)`
    : "";
  const rows: string[][] = [
    [
      "version",
      daemon.version === denoJson.version
        ? daemon.version
        : `${daemon.version} (this client: ${denoJson.version})`,
    ],
    ["pid", String(daemon.pid)],
    ["uptime", formatDuration(daemon.uptime)],
    ["peer", daemon.impl],
    ["addresses", daemon.addresses.join(", ")],
    ...(daemon.httpFast === undefined ? [] : [["GET with sendfile", daemon.httpFast]]),
    ["zero-copy", daemon.zeroCopy ? "on" : "off"],
    ["capacity", formatSize(stats.capacity)],
    ["used", `${formatSize(stats.bytes)}${percent}`],
    ["free", formatSize(free)],
    ["objects", String(stats.objects)],
    ["leases", String(stats.leases)],
    ["clients", String(daemon.clients)],
  ];
  const metric = (name: string) => daemon.metrics[name];
  for (const tier of ["hot", "cold"]) {
    const bytes = metric(`tier_${tier}_bytes`);
    const capacity = metric(`tier_${tier}_capacity_bytes`);
    if (bytes === undefined || capacity === undefined) continue;
    rows.push([
      `tier ${tier}`,
      `${formatSize(bytes)} of ${formatSize(capacity)}, ${
        metric(`tier_${tier}_objects`) ?? 0
      } objects`,
    ]);
  }
  if (stats.evictions !== undefined) rows.push(["evictions", String(stats.evictions)]);
  return table(rows.map(([name, value]) => [`${name}:`, value!]));
}
