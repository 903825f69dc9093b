/**
 * The daemon's part in a cluster: SWIM membership over its HTTP server,
 * and, without `--redis`, the embedded object directory. A daemon with
 * `--http` and no `--join` is a cluster of one.
 *
 * @module
 */
import { defaultNode } from "../backends/redis/redis_options.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { HttpClusterTransport } from "../p2p/cluster_transport.ts";
import { clusterRoutes } from "../p2p/cluster_routes.ts";
import { EmbeddedDirectory } from "../p2p/directory/embedded.ts";
import { GOSSIP_PROFILES } from "../p2p/membership/config.ts";
import { Membership } from "../p2p/membership/membership.ts";
import { baseUrl } from "../p2p/membership/messages.ts";
import type { HttpRoute } from "../transport/http/server.ts";
import type { Logger } from "./log.ts";
import type { DaemonOptions } from "./options.ts";

/** The daemon as a member of its cluster: membership, and the embedded directory without Redis. */
export interface ClusterMember extends AsyncDisposable {
  /** The membership: the live members and their changes. */
  readonly membership: Membership;
  /** The embedded directory, when the daemon has no `--redis`. */
  readonly directory: EmbeddedDirectory | undefined;
  /** The routes to add to the HTTP server. */
  readonly routes: readonly HttpRoute[];
  /** Prometheus text of the membership and the embedded directory. */
  metricsText(): string;
  /** Starts gossip with this daemon at `url` (or `--advertise`), and joins through `--join`. */
  start(url: string): Promise<void>;
  /** Leaves the cluster and stops. Idempotent. */
  close(): Promise<void>;
}

/** `host:port` or a base URL, as a base URL. */
export function memberUrl(text: string, flag: string): string {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  try {
    return baseUrl(url, flag);
  } catch {
    throw new InvalidArgumentError(
      `Invalid ${flag}: ${text}: expected HOST:PORT or http://HOST:PORT`,
    );
  }
}

/**
 * Builds the cluster side of a daemon; {@link ClusterMember.start} starts it once
 * the HTTP server listens.
 *
 * @param options The daemon's options: `--node`, `--join`, `--advertise`, `--gossip-profile`, `--token`.
 * @param log Where events go.
 * @throws {InvalidArgumentError} For a bad `--join` or `--advertise`.
 */
export function createClusterMember(options: DaemonOptions, log: Logger): ClusterMember {
  const seeds = options.join.map((seed) => memberUrl(seed, "--join"));
  const advertise = options.advertise === undefined
    ? undefined
    : memberUrl(options.advertise, "--advertise");
  const config = GOSSIP_PROFILES[options.gossipProfile];
  const transport = new HttpClusterTransport(
    options.token === undefined ? {} : { token: options.token },
  );
  const membership = new Membership({
    node: options.node ?? defaultNode(),
    transport,
    config,
    log: { info: log.info, warn: log.warn, debug: log.debug },
  });
  const directory = options.redis !== undefined ? undefined : new EmbeddedDirectory({
    members: membership,
    transport,
    // Short: a lookup or announce must not wait long on a member that hangs.
    requestTimeout: Math.max(4 * config.probeTimeout, 1000),
    log: log.warn,
  });
  const routes = clusterRoutes(membership, (path, body) => {
    if (path.startsWith("directory/") && directory !== undefined) {
      return directory.handle(path.slice("directory/".length), body);
    }
    return membership.handle(path, body);
  });
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await directory?.close();
      await membership.close();
    })();
    return closing;
  };
  return {
    membership,
    directory,
    routes,
    metricsText: () => membership.metricsText() + (directory?.metricsText() ?? ""),
    start: async (url) => {
      const address = advertise ?? url;
      if (advertise === undefined && /\/\/(0\.0\.0\.0|\[::\])/.test(url)) {
        log.warn(`Advertising ${url}, a wildcard address: set --advertise to one others can reach`);
      }
      const joined = await membership.start(address, seeds);
      log.info(
        `Cluster: node ${membership.self} at ${address}, ${options.gossipProfile} profile, ${
          seeds.length === 0
            ? "a cluster of one until others join"
            : `joined through ${joined} of ${seeds.length}`
        }`,
      );
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
