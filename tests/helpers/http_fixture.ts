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
