/**
 * The server's handlers of the operations that ask and change nothing:
 * STAT, LIST, HAS, STATS, STATUS and METRICS, and FETCH, which the daemon's
 * read-through answers.
 *
 * @module
 */
import { UnsupportedError } from "../../core/errors.ts";
import { listPageOf, type ListPageOptions } from "../../core/list_page.ts";
import { hasRequest, statRequest } from "../../core/requests.ts";
import { decodeJson, decodeText } from "./protocol.ts";
import { originRequest } from "../origin_fetch.ts";
import { json, type Session } from "./session.ts";

export function stat(session: Session, body: Uint8Array): Promise<string> {
  return session.peer.stat(statRequest(decodeText(body))).then(json);
}

/**
 * LIST: with a body, one page of the list (see `core/list_page.ts`); a bare
 * LIST, from a client from before pages, the whole list as it was, up to
 * {@link BARE_LIST_MAX} objects. Beyond that a typed error says to upgrade:
 * such a client parses only a whole array, and sending one of any size
 * queues it whole and stops the event loop to make it.
 */
export function list(session: Session, body: Uint8Array): Promise<string> {
  if (body.length === 0) return bareList(session);
  return listPageOf(session.peer, decodeJson(body) as ListPageOptions).then(json);
}

/** The most objects a LIST without a body answers with. */
export const BARE_LIST_MAX = 10_000;

async function bareList(session: Session): Promise<string> {
  const page = await listPageOf(session.peer, { limit: BARE_LIST_MAX });
  if (page.next !== undefined) {
    throw new UnsupportedError(
      `Cannot list whole: more than ${page.objects.length} objects, more than a LIST without a body answers; upgrade the client to one that lists in pages`,
    );
  }
  return json(page.objects);
}

export function has(session: Session, body: Uint8Array): Promise<Uint8Array> {
  return session.peer.has(hasRequest(decodeText(body))).then((has) => Uint8Array.of(has ? 1 : 0));
}

export function stats(session: Session): Promise<string> {
  return session.peer.stats().then(json);
}

export function status(session: Session): Promise<string> {
  const status = session.context.status;
  if (status === undefined) {
    throw new UnsupportedError("No status: this server is not a daemon");
  }
  return status().then(json);
}

/** A URL read through the daemon, for FETCH: the object holding the body. */
export function fetchOrigin(session: Session, body: Uint8Array): Promise<string> {
  const fetch = session.context.fetch;
  if (fetch === undefined) throw new UnsupportedError("No fetch: this server reads no URL");
  return fetch(originRequest(decodeJson(body))).then(json);
}

/** The peer's metrics, the daemon's own and the server's counters, for METRICS. */
export async function metrics(session: Session): Promise<string> {
  const own = await session.peer.metrics?.();
  const { extraMetrics, metrics } = session.context;
  return json({ ...own, ...extraMetrics?.(), ...metrics.snapshot() });
}
