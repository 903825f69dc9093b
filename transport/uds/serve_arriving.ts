/**
 * The server's handlers of ARRIVE, ARRIVE_NEXT and ARRIVE_CANCEL: a client
 * streams an object still on its way to the daemon, each chunk pulled as
 * soon as its pieces are verified.
 *
 * @module
 */
import { UnknownLeaseError } from "../../core/errors.ts";
import { offersArrivingRead } from "../../core/peer.ts";
import { getRequest } from "../../core/requests.ts";
import { decodeText } from "./protocol.ts";
import { empty, json, type Session } from "./session.ts";

/** The arriving streams of one connection, by number; cancelled when it ends. */
export class ServerArrivals {
  readonly #streams = new Map<number, ReadableStreamDefaultReader<Uint8Array>>();
  #next = 1;

  /** Keeps `body` under a new number. */
  add(body: ReadableStream<Uint8Array>): number {
    const stream = this.#next++;
    this.#streams.set(stream, body.getReader());
    return stream;
  }

  /**
   * The reader of stream `text`.
   *
   * @throws {UnknownLeaseError} For a stream not opened on this connection, or ended.
   */
  get(text: string): ReadableStreamDefaultReader<Uint8Array> {
    const reader = /^\d+$/.test(text) ? this.#streams.get(Number(text)) : undefined;
    if (reader === undefined) {
      throw new UnknownLeaseError(`Unknown arriving stream: ${text}`);
    }
    return reader;
  }

  /** Ends stream `text`; its reader is cancelled unless `done`. */
  async end(text: string, done = false): Promise<void> {
    const reader = this.get(text);
    this.#streams.delete(Number(text));
    if (!done) await reader.cancel().catch(() => {});
  }

  /** Cancels every stream. */
  async close(): Promise<void> {
    const readers = [...this.#streams.values()];
    this.#streams.clear();
    await Promise.all(readers.map((reader) => reader.cancel().catch(() => {})));
  }
}

export async function arrive(session: Session, body: Uint8Array): Promise<string> {
  const id = getRequest(decodeText(body));
  const peer = session.peer;
  const arriving = offersArrivingRead(peer) ? await peer.readArriving(id) : undefined;
  if (arriving === undefined) return json(null);
  return json({ object: arriving.object, stream: session.arrivals.add(arriving.body) });
}

export async function arriveNext(session: Session, body: Uint8Array): Promise<Uint8Array> {
  const text = decodeText(body);
  let next: ReadableStreamReadResult<Uint8Array>;
  try {
    next = await session.arrivals.get(text).read();
  } catch (error) {
    await session.arrivals.end(text, true).catch(() => {});
    throw error;
  }
  if (next.done) {
    await session.arrivals.end(text, true);
    return empty;
  }
  session.context.metrics.readBytes += next.value.length;
  return next.value;
}

export async function arriveCancel(session: Session, body: Uint8Array): Promise<Uint8Array> {
  await session.arrivals.end(decodeText(body));
  return empty;
}
