/**
 * What the server's request handlers share: the server's context, and one
 * connection's state as a {@link Session}.
 *
 * @module
 */
import { UnknownLeaseError, WrongAccessError } from "../../core/errors.ts";
import type { ObjectInfo } from "../../core/object.ts";
import type { Acquired, Peer } from "../../core/peer.ts";
import type { DaemonStatus } from "../../core/status.ts";
import type { OriginReply, OriginRequest } from "../origin_fetch.ts";
import type { Native } from "../../native/load.ts";
import type { Reactor } from "../../native/reactor.ts";
import type { Channel } from "./channel.ts";
import type { Connection } from "./connection.ts";
import type { UdsMetrics } from "./metrics.ts";
import type { RecentTexts } from "./recent_texts.ts";
import type { ServerOpens } from "./serve_open.ts";
import type { ServerArrivals } from "./serve_arriving.ts";
import type { FastConnection } from "./fast_connection.ts";
import type { FastOpens } from "./fast_opens.ts";

/** Where a `UdsServer` reports events. */
export interface UdsServerLog {
  /** Something went wrong with one client; the server carries on. */
  warn(message: string): void;
  /** Connections and disconnections. */
  debug(message: string): void;
}

/** What every connection of a server shares. */
export interface Context {
  readonly native: Native;
  readonly reactor: Reactor;
  readonly peer: Peer;
  readonly maxQueuedBytes: number;
  readonly maxInflight: number;
  readonly log: UdsServerLog;
  readonly status: (() => Promise<DaemonStatus>) | undefined;
  readonly fetch: ((request: OriginRequest) => Promise<OriginReply>) | undefined;
  readonly metrics: UdsMetrics;
  /** The native fast path of gets, when the peer counts reads served beside its leases. */
  readonly fast: FastOpens | undefined;
  /** The daemon's own figures, added to METRICS replies. */
  readonly extraMetrics: (() => Readonly<Record<string, number>>) | undefined;
  /** Called when a connection has ended. */
  forget(connection: Connection): void;
}

/** One client's connection, as its request handlers see it. */
export interface Session {
  readonly context: Context;
  readonly peer: Peer;
  readonly channel: Channel;
  /** Leases granted on this connection and not yet ended by it. */
  readonly leases: Map<string, Acquired>;
  /** Object ids opened and lease ids granted lately, to decode them again without a new string. */
  readonly recent: RecentTexts;
  /** What OPEN replies sent this client. */
  readonly opens: ServerOpens;
  /** Objects this client streams as they arrive (ARRIVE). */
  readonly arrivals: ServerArrivals;
  /** Bytes of the READs under way: replies the send queue may yet have to hold. */
  reading: number;
  /** This connection's leases granted in C, by the fast path. */
  readonly fast: FastConnection | undefined;
}

/** An empty reply body. */
export const empty: Uint8Array = new Uint8Array(0);

/** A reply body as JSON text, encoded straight into its frame. */
export function json(value: unknown): string {
  return JSON.stringify(value);
}

/**
 * `lease`, when it was granted on this connection.
 *
 * @throws {UnknownLeaseError} When it was not.
 * @throws {WrongAccessError} When it is a READ lease granted in C (the fast path).
 * @throws {LeaseExpiredError} When it is one that has expired.
 */
export function owned(session: Session, lease: string): string {
  if (!session.leases.has(lease)) {
    if (session.fast?.holds(lease) === true) {
      throw new WrongAccessError(
        `Cannot write, seal or discard with lease ${lease}: it is a READ lease; acquire CREATE or WRITE for that`,
      );
    }
    throw new UnknownLeaseError(`Lease ${lease} was not granted on this connection`);
  }
  return lease;
}

/** Closes fds a request carried and nothing took. */
export function closeAll(session: Session, fds: readonly number[]): void {
  for (const fd of fds) session.context.native.symbols.pk_close(fd);
}

/**
 * Counts the bytes of an object sealed through this server; its info as the
 * reply, JSON unless `form` writes it otherwise.
 */
export function written<T = string>(
  session: Session,
  info: ObjectInfo,
  form: (info: ObjectInfo) => T = json as (info: ObjectInfo) => T,
): T {
  session.context.metrics.writtenBytes += info.size;
  return form(info);
}
