/** A memory peer behind an HTTP server on a free loopback port, for the HTTP tests. */
import {
  type HttpServer,
  type HttpServerOptions,
  ManualClock,
  MemoryPeer,
  serveHttp,
} from "../../mod.ts";

/** The peer, its server and its clock, closed together. */
export interface HttpFixture extends AsyncDisposable {
  readonly peer: MemoryPeer;
  readonly server: HttpServer;
  readonly clock: ManualClock;
  /** Fetches a path of the server. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/** A memory peer on a manual clock (swept only when asked) behind a server on a free port. */
export function startHttp(options: HttpServerOptions & { capacity?: number } = {}): HttpFixture {
  const clock = new ManualClock(1_000_000);
  const peer = new MemoryPeer({ capacity: options.capacity ?? 64 << 20, clock, sweepInterval: 0 });
  const server = serveHttp(peer, { port: 0, ...options });
  return {
    peer,
    server,
    clock,
    fetch: (path, init) => fetch(`${server.url}${path}`, init),
    [Symbol.asyncDispose]: async () => {
      await server.close();
      await peer.close();
    },
  };
}

/** The bytes of a body of `length` bytes: `first`, read already from `reader`, and the rest of it. */
export async function readRest(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  first: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const received = new Uint8Array(length);
  received.set(first);
  let at = first.length;
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    received.set(next.value, at);
    at += next.value.length;
  }
  return received.subarray(0, at);
}
