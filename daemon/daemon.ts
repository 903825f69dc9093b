import denoJson from "../deno.json" with { type: "json" };
import { computeDigest } from "../backends/digest.ts";
import { InvalidArgumentError, PackiceError } from "../core/errors.ts";
import type { RedisLeaseStore } from "../backends/redis/mod.ts";
import type { Peer } from "../core/peer.ts";
import { FileSystemPeer } from "../peers/fs_peer.ts";
import { MemoryPeer } from "../peers/memory_peer.ts";
import { TieredPeer } from "../peers/tiered_peer.ts";
import { UdsServer } from "../transport/uds/server.ts";
import { isLoopback, parseListenAddress } from "../transport/http/address.ts";
import { serveHttp } from "../transport/http/server.ts";
import { formatRequest } from "../transport/http/request_log.ts";
import { randomToken, tokenFilePath, writeTokenFile } from "../transport/http/token_file.ts";
import { loadNative } from "../native/load.ts";
import type { DaemonStatus } from "../core/status.ts";
import type { ClusterPeer } from "../p2p/cluster_peer.ts";
import type { ClusterMember } from "./cluster_member.ts";
import type { Directory } from "../p2p/directory.ts";
import type { ReadThrough } from "../p2p/origin/read_through.ts";
import { diskBudget } from "./disk_budget.ts";
import { lockSocket } from "./lock.ts";
import type { Logger } from "./log.ts";
import type { DaemonOptions } from "./options.ts";
import { formatSize } from "./size.ts";

/** A running daemon: a peer and the servers that expose it. */
export interface Daemon extends AsyncDisposable {
  /** The peer being served. */
  readonly peer: Peer;
  /** Where each server listens, for people: `unix:///run/packice.sock`, `http://127.0.0.1:7070`. */
  readonly addresses: readonly string[];
  /** The file holding the HTTP token the daemon made, if it made one. */
  readonly tokenFile: string | undefined;
  /** What `packice status` shows. */
  status(): Promise<DaemonStatus>;
  /** Membership and the embedded directory, for a daemon with `--http`. */
  readonly member: ClusterMember | undefined;
  /** Stops every server, then closes the peer. Idempotent. */
  close(): Promise<void>;
}

/**
 * Where the HTTP server's native GET listener goes: `--http-fast`'s address
 * (it must start), or by default the `--http` host at a free port, where it
 * can run (`--impl mem`, the native library, no `--advertise`, whose host
 * this daemon cannot tell is reachable at another port); one that cannot
 * start then is logged, and pieces go out through the `--http` server.
 */
function fastGetOf(
  options: DaemonOptions,
  log: Logger,
): { fastGet?: { hostname: string; port: number; optional?: (error: Error) => void } } {
  if (options.httpFast === "off") return {};
  if (options.httpFast !== undefined) return { fastGet: parseListenAddress(options.httpFast) };
  if (options.impl !== "mem" || options.advertise !== undefined || loadNative() === undefined) {
    return {};
  }
  const { hostname } = parseListenAddress(options.http!);
  const optional = (error: Error) =>
    log.warn(
      `No native GET listener (pieces go out through the HTTP server): ${error.message}`,
    );
  return { fastGet: { hostname, port: 0, optional } };
}

/**
 * Warns when other users of the host can read the token file: with the
 * token they read and delete objects over HTTP, as the socket's mode forbids.
 */
async function warnIfShared(file: string, log: Logger): Promise<void> {
  const mode = (await Deno.stat(file).catch(() => undefined))?.mode;
  if (mode === undefined || mode === null || (mode & 0o004) === 0) return;
  log.warn(
    `--token-file ${file} can be read by every user of this host (mode ${
      (mode & 0o777).toString(8)
    }), and with the token they can read and delete objects over HTTP: chmod o-r ${file}`,
  );
}

/** Builds the peer that `options` describe; with `--redis`, its leases and directory live in Redis. */
export async function createPeer(options: DaemonOptions, log?: Logger): Promise<Peer> {
  if (options.redis === undefined) return await peerOver(options, {}, log);
  return await peerOver(
    options,
    { ...await connectRedis(options, log), digest: computeDigest },
    log,
  );
}

/** The peer of `options` over the lease store given, which it closes on failure. */
async function peerOver(
  options: DaemonOptions,
  shared: { leases?: RedisLeaseStore; node?: string; digest?: typeof computeDigest },
  log?: Logger,
): Promise<Peer> {
  const warn = log === undefined ? undefined : (message: string) => log.warn(message);
  try {
    switch (options.impl) {
      case "mem":
        return new MemoryPeer({ capacity: options.capacity, mode: options.mode, ...shared });
      case "fs":
        return await FileSystemPeer.open({
          dir: options.dataDir!,
          capacity: await diskBudget(options.dataDir!, options.capacity, "--capacity", log),
          mode: options.mode,
          ...(warn === undefined ? {} : { warn }),
          ...shared,
        });
      case "tiered":
        return await TieredPeer.open({
          dir: options.dataDir!,
          hotCapacity: options.hot,
          coldCapacity: await diskBudget(options.dataDir!, options.cold, "--cold", log),
          mode: options.mode,
          ...(warn === undefined ? {} : { warn }),
          ...shared,
        });
    }
  } catch (error) {
    await shared.leases?.close();
    if (error instanceof PackiceError) throw error;
    throw new InvalidArgumentError(
      `Cannot use --data-dir ${options.dataDir}: ${
        (error as Error).message
      }: give a directory this user can create and write, on a writable file system`,
      { cause: error },
    );
  }
}

/** Joins the Redis namespace, retrying with backoff until Redis answers. */
async function connectRedis(
  options: DaemonOptions,
  log: Logger | undefined,
): Promise<{ leases: RedisLeaseStore; node: string }> {
  // Loaded only when asked for: the Redis client is most of what a daemon would load at start.
  const { RedisLeaseStore } = await import("../backends/redis/mod.ts");
  const leases = await RedisLeaseStore.connect({
    url: options.redis!,
    namespace: options.namespace,
    ...(options.node === undefined ? {} : { node: options.node }),
    address: options.http === undefined ? `unix://${options.socket}` : `http://${options.http}`,
    connectAttempts: Infinity,
    ...(log === undefined ? {} : { log }),
  });
  log?.info(`Leases and directory: Redis, namespace ${leases.namespace}, node ${leases.node}`);
  return { leases, node: leases.node };
}

/**
 * Starts a daemon: the lock of its socket path, the peer, then each server the
 * options ask for. The lock is held until the peer is closed.
 *
 * @param options Parsed `serve` options.
 * @param log Where events go.
 * @throws {AlreadyExistsError} When another daemon holds the socket's lock or answers on it.
 */
export async function startDaemon(options: DaemonOptions, log: Logger): Promise<Daemon> {
  // A token always on HTTP: without one, any local user could list and delete objects over
  // loopback, which the socket's mode 0600 forbids them. Made first, so that the cluster
  // member and peer speak with the token the server takes.
  const made = options.http !== undefined && options.token === undefined &&
      isLoopback(parseListenAddress(options.http).hostname)
    ? randomToken()
    : undefined;
  if (made !== undefined) options = { ...options, token: made };
  // Taken before anything else: a daemon that loses touches neither the socket nor the
  // data directory, where opening an fs or tiered peer removes the winner's unfinished objects.
  const lock = await lockSocket(options.socket);
  if (options.tokenFile !== undefined) await warnIfShared(options.tokenFile, log);
  let peer: Peer;
  let cluster: ClusterPeer | undefined;
  let clusterMember: ClusterMember | undefined;
  let claims: { directory: Directory; node: string } | undefined;
  try {
    if (options.redis === undefined && options.http === undefined) {
      peer = await createPeer(options, log);
    } else {
      // A cluster: over the embedded directory with gossip membership, or over Redis.
      // Content digests are computed at seal by the cluster peer.
      const shared = options.redis === undefined ? undefined : await connectRedis(options, log);
      const home = shared === undefined
        ? await createPeer(options, log)
        : await peerOver(options, shared, log);
      try {
        // Loaded only for a cluster: a daemon on its own starts as fast as before.
        const { redisWiring, wrapCluster } = await import("./cluster_peer.ts");
        let wiring;
        if (shared === undefined) {
          const { createClusterMember } = await import("./cluster_member.ts");
          const member = clusterMember = createClusterMember(options, log);
          wiring = {
            directory: member.directory!,
            members: member.membership,
            node: member.membership.self,
          };
        } else {
          wiring = await redisWiring(options, shared.leases, log);
        }
        claims = { directory: wiring.directory, node: wiring.node };
        peer = cluster = wrapCluster(home, {
          ...wiring,
          capacity: options.impl === "tiered" ? options.hot : options.capacity,
          token: options.token,
          maxDownloadRate: options.maxDownloadRate,
          transferBudget: options.transferBudget,
          log,
        });
      } catch (error) {
        await home.close();
        throw error;
      }
    }
  } catch (error) {
    lock.release();
    throw error;
  }
  const started = performance.now();
  const closers: Array<() => Promise<void>> = [];
  const addresses: string[] = [];
  let clients = () => 0;
  let httpFast: string | undefined;
  const zeroCopy = loadNative() !== undefined && options.impl !== "fs";
  // The read-through's counts, once it is loaded, beside the peer's in every report.
  let readThrough: ReadThrough | undefined;
  const ownMetrics = (): Readonly<Record<string, number>> => ({ ...readThrough?.counts });
  const status = async (): Promise<DaemonStatus> => ({
    version: denoJson.version,
    pid: Deno.pid,
    uptime: Math.round(performance.now() - started) / 1000,
    zeroCopy,
    impl: options.impl,
    addresses: [...addresses],
    ...(httpFast === undefined ? {} : { httpFast }),
    clients: clients(),
    stats: await peer.stats(),
    metrics: { ...await peer.metrics?.(), ...ownMetrics() },
    ...(clusterMember === undefined ? {} : {
      members: clusterMember.membership.list().map((
        { node, address, state, incarnation, changedAt },
      ) => ({ node, address, state, incarnation, changedAt })),
    }),
  });
  // The read-through, loaded at the first fetch (or with the HTTP server): a daemon starts as fast.
  let loading: Promise<ReadThrough> | undefined;
  const readThroughOf = () =>
    loading ??= (async () => {
      const [{ ReadThrough }, { HttpClusterTransport }, { transferLimits }] = await Promise.all([
        import("../p2p/origin/read_through.ts"),
        import("../p2p/cluster_transport.ts"),
        import("../p2p/transfer_limits.ts"),
      ]);
      return readThrough = new ReadThrough({
        peer,
        // One budget and one download rate for fetches from daemons and from origins.
        limits: cluster?.limits ?? transferLimits(options),
        maxBodyBytes: options.impl === "tiered" ? options.hot : options.capacity,
        cluster: claims === undefined ? undefined : {
          directory: claims.directory,
          transport: new HttpClusterTransport(
            options.token === undefined ? {} : { token: options.token },
          ),
          // As the cluster peer announces itself: its followers pull at its piece port.
          self: () => {
            const address = cluster?.address;
            if (address === undefined) return undefined;
            const piecePort = cluster?.piecePort;
            const self = { node: claims!.node, address };
            return piecePort === undefined ? self : { ...self, piecePort };
          },
          token: options.token,
        },
        log: log.warn,
      });
    })();
  let tokenFile: string | undefined;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      try {
        readThrough?.close();
        for (const closer of closers.reverse()) await closer().catch((e) => log.error(String(e)));
        await peer.close();
      } finally {
        lock.release();
      }
    })();
    return closing;
  };
  try {
    const uds = await UdsServer.listen(peer, options.socket, {
      mode: options.socketMode,
      log,
      status,
      fetch: async (request) => await (await readThroughOf()).fetch(request),
      metrics: ownMetrics,
    });
    addresses.push(uds.address);
    closers.push(() => uds.close());
    clients = () => uds.connections;
    if (options.http !== undefined) {
      const token = options.token;
      const member = clusterMember ??= (await import("./cluster_member.ts")).createClusterMember(
        options,
        log,
      );
      const http = serveHttp(peer, {
        ...parseListenAddress(options.http),
        ...(token === undefined ? {} : { token }),
        onError: (error) => log.error(`HTTP: ${error instanceof Error ? error.stack : error}`),
        onRequest: (entry) => (entry.status >= 400 ? log.info : log.debug)(formatRequest(entry)),
        status,
        metrics: () => ({ ...uds.metrics(), ...ownMetrics() }),
        routes: [
          ...member.routes,
          ...(await import("../p2p/origin/routes.ts")).originRoutes(await readThroughOf(), peer),
          ...(cluster === undefined
            ? []
            : [(await import("../p2p/directory/holding.ts")).holdingRoute(cluster)]),
        ],
        metricsText: () => member.metricsText(),
        maxUploadRate: options.maxUploadRate,
        maxUploads: options.maxUploads,
        repeatWindowMs: options.maxUploads === undefined ? 0 : 400,
        ...fastGetOf(options, log),
      });
      addresses.push(http.url);
      httpFast = http.fastUrl;
      closers.push(() => http.close());
      // Closed before the server, so it leaves while it still answers.
      closers.push(() => member.close());
      if (made !== undefined) {
        const path = tokenFilePath(options.socket);
        await writeTokenFile(path, {
          token: made,
          urls: http.fastUrl === undefined ? [http.url] : [http.url, http.fastUrl],
        });
        tokenFile = path;
        closers.push(() => Deno.remove(path).catch(() => {}));
      }
      await member.start(http.url);
      if (cluster !== undefined) {
        cluster.address = member.membership.address;
        // Members ask for pieces at the listener's port, on the host of this daemon's address.
        if (http.fastUrl !== undefined) cluster.piecePort = Number(new URL(http.fastUrl).port);
      }
    }
  } catch (error) {
    await close();
    throw error;
  }
  const budget = options.impl === "tiered"
    ? `hot ${formatSize(options.hot)}, cold ${formatSize(options.cold)}, mode ${options.mode}`
    : `capacity ${formatSize(options.capacity)}, mode ${options.mode}`;
  const token = tokenFile !== undefined
    ? `; HTTP token made and written to ${tokenFile}`
    : options.tokenFrom !== undefined
    ? `; HTTP token from ${options.tokenFrom}`
    : "";
  log.info(
    `Packice ${denoJson.version} (pid ${Deno.pid}): ${options.impl} peer, ${budget}, on ${
      addresses.join(", ")
    }${
      httpFast === undefined ? "" : `, GET of sealed objects also on ${httpFast}`
    }; zero-copy sharing ${zeroCopy ? "on" : "off"}${token}`,
  );
  return {
    peer,
    addresses,
    tokenFile,
    status,
    member: clusterMember,
    close,
    [Symbol.asyncDispose]: close,
  };
}
