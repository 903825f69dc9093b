/**
 * Request metrics of the HTTP server, and the Prometheus text of `/metrics`.
 *
 * @module
 */
import { metricsOf, STATS_METRICS } from "../../core/metrics.ts";
import type { PeerStats } from "../../core/peer.ts";

/** Upper bounds in seconds of the latency histogram buckets. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface RouteStats {
  /** Requests by status. */
  readonly statuses: Map<number, number>;
  /** Count per bucket, not cumulative; the last slot is +Inf. */
  readonly buckets: number[];
  sum: number;
  count: number;
}

/** Counts requests and their latencies by route, for `/metrics`. */
export class RequestMetrics {
  readonly #routes = new Map<string, RouteStats>();

  /**
   * Records one request.
   *
   * @param route The route pattern, such as `GET /v1/objects/:id`.
   * @param status The response status.
   * @param seconds Time from the request to the response headers.
   */
  observe(route: string, status: number, seconds: number): void {
    let stats = this.#routes.get(route);
    if (stats === undefined) {
      stats = {
        statuses: new Map(),
        buckets: new Array(BUCKETS.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.#routes.set(route, stats);
    }
    stats.statuses.set(status, (stats.statuses.get(status) ?? 0) + 1);
    let bucket = 0;
    while (bucket < BUCKETS.length && seconds > BUCKETS[bucket]!) bucket++;
    stats.buckets[bucket]!++;
    stats.sum += seconds;
    stats.count++;
  }

  /**
   * The Prometheus text exposition of the peer's counts and these requests.
   *
   * @param peer The peer's stats; hits, misses and evictions are 0 where the peer does not count them.
   * @param extra The peer's own metrics (`Peer.metrics()`): a name ending in `_total` is a counter, any other a gauge.
   */
  render(peer: PeerStats, extra: Readonly<Record<string, number>> = {}): string {
    const lines: string[] = [];
    const helps = new Map(STATS_METRICS.map(({ name, help }) => [name, help]));
    // A family is described once, before its first series: `uds_requests_total{op="open"}`.
    let family = "";
    for (const [name, value] of Object.entries(metricsOf(peer, extra))) {
      const base = name.split("{", 1)[0]!;
      if (base !== family) {
        family = base;
        const help = helps.get(base) ?? `The peer's ${base.replaceAll("_", " ")}.`;
        const type = base.endsWith("_total") ? "counter" : "gauge";
        lines.push(`# HELP packice_${base} ${help}`, `# TYPE packice_${base} ${type}`);
      }
      lines.push(`packice_${name} ${value}`);
    }

    const requests = "packice_http_requests_total";
    lines.push(
      `# HELP ${requests} HTTP requests by route and status.`,
      `# TYPE ${requests} counter`,
    );
    for (const [route, stats] of this.#routes) {
      for (const [status, count] of stats.statuses) {
        lines.push(`${requests}{route="${route}",status="${status}"} ${count}`);
      }
    }
    const latency = "packice_http_request_duration_seconds";
    lines.push(
      `# HELP ${latency} Time from request to response headers, by route.`,
      `# TYPE ${latency} histogram`,
    );
    for (const [route, stats] of this.#routes) {
      let cumulative = 0;
      stats.buckets.forEach((count, index) => {
        cumulative += count;
        const le = index < BUCKETS.length ? String(BUCKETS[index]) : "+Inf";
        lines.push(`${latency}_bucket{route="${route}",le="${le}"} ${cumulative}`);
      });
      lines.push(`${latency}_sum{route="${route}"} ${stats.sum}`);
      lines.push(`${latency}_count{route="${route}"} ${stats.count}`);
    }
    return `${lines.join("\n")}\n`;
  }
}
