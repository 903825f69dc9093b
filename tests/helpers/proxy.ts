/**
 * An HTTP proxy in front of a daemon, for tests of holders that misbehave:
 * it forwards every request and can change, slow down or count what passes.
 */

/** Options of {@link startProxy}. */
export interface ProxyOptions {
  /** Called before each request is forwarded. */
  readonly onRequest?: (request: Request) => Promise<void> | void;
  /** Flips one byte of every range response (206). */
  readonly corrupt?: boolean;
  /** Answers every range request with this status and no body, instead of forwarding it. */
  readonly rangeStatus?: number;
  /** Ends every range response this many bytes early. */
  readonly shortBy?: number;
  /** Bytes per second of response bodies; unlimited without it. */
  readonly rate?: number;
  /**
   * Called with the response bytes sent so far, after each chunk; the next
   * waits for it. Once it returns true, every response ends at once, short,
   * as a holder's that died.
   */
  readonly onBytes?: (sent: number) => Promise<boolean | void> | boolean | void;
}

/** A running proxy. */
export interface Proxy extends AsyncDisposable {
  /** Its base URL. */
  readonly url: string;
  /** Requests seen, as `METHOD path [range]`. */
  readonly requests: string[];
}

const SLICE = 64 << 10;

/** Starts a proxy on a free loopback port that forwards to `target`. */
export function startProxy(target: string, options: ProxyOptions = {}): Proxy {
  const requests: string[] = [];
  const abort = new AbortController();
  let sent = 0;
  let dead = false;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: abort.signal, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      const range = request.headers.get("range");
      requests.push(`${request.method} ${url.pathname}${range === null ? "" : ` ${range}`}`);
      await options.onRequest?.(request);
      if (range !== null && options.rangeStatus !== undefined) {
        return new Response("refused by the test", { status: options.rangeStatus });
      }
      let upstream: Response;
      try {
        upstream = await fetch(`${target}${url.pathname}${url.search}`, {
          method: request.method,
          headers: request.headers,
        });
      } catch {
        return new Response("upstream unreachable", { status: 502 });
      }
      if (upstream.body === null) return upstream;
      const corrupt = options.corrupt === true && upstream.status === 206;
      let left = upstream.status === 206 && options.shortBy !== undefined
        ? Number(upstream.headers.get("content-length")) - options.shortBy
        : Infinity;
      let first = true;
      const reader = upstream.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (dead) return controller.close();
          let read: ReadableStreamReadResult<Uint8Array>;
          try {
            read = await reader.read();
          } catch {
            // The holder died: the response ends short, as a dead holder's would.
            return controller.close();
          }
          const { done, value } = read;
          if (done || left <= 0) {
            if (!done) await reader.cancel();
            return controller.close();
          }
          let chunk = value;
          if (corrupt && first && chunk.length > 0) {
            chunk = chunk.slice();
            chunk[0]! ^= 0xff;
          }
          first = false;
          if (chunk.length > left) chunk = chunk.subarray(0, left);
          left -= chunk.length;
          for (let at = 0; at < chunk.length; at += SLICE) {
            const slice = chunk.subarray(at, at + SLICE);
            if (options.rate !== undefined) {
              await new Promise((wake) => setTimeout(wake, slice.length / options.rate! * 1000));
            }
            controller.enqueue(slice);
            sent += slice.length;
            if (await options.onBytes?.(sent) === true) dead = true;
            if (dead) return controller.close();
          }
        },
        cancel: (reason) => reader.cancel(reason),
      });
      return new Response(body, { status: upstream.status, headers: upstream.headers });
    },
  );
  const { port } = server.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    [Symbol.asyncDispose]: async () => {
      abort.abort();
      await server.finished;
    },
  };
}
