/**
 * An origin server for the read-through tests: one large file with an
 * ETag, `Range` and `If-Range` as a real server does them, sent at a
 * chosen rate, cut off or held after a chosen number of bytes when asked,
 * changed (bytes and ETag) after its first response when asked, and every
 * request and byte counted.
 */

/** Options of {@link startCountingOrigin}. */
export interface CountingOriginOptions {
  /** The file's bytes. */
  readonly body: Uint8Array<ArrayBuffer>;
  /** Bytes per second sent per response. Default: unlimited. */
  readonly rate?: number;
  /** The first full (not ranged) response is cut off after this many bytes. */
  readonly cutAfter?: number;
  /** Required `Authorization` value; others get 401. */
  readonly authorization?: string;
  /** Whether it sends an ETag (and honours If-Range, If-None-Match). Default true. */
  readonly etag?: boolean;
  /** What it serves after the first response: other bytes (of any length). */
  readonly then?: Uint8Array<ArrayBuffer>;
  /** The ETag it sends with {@link CountingOriginOptions.then}'s bytes. Default: {@link ETAG}. */
  readonly thenEtag?: string;
  /** Whether it sends bodies chunked, with no Content-Length. Default false. */
  readonly chunked?: boolean;
  /**
   * The first full response stops sending after this many bytes and holds
   * its connection open: what it sent so far is all its client gets.
   */
  readonly pauseAt?: number;
}

/** One request the origin saw. */
export interface SeenRequest {
  /** The path and query asked for (any serves the file). */
  readonly path: string;
  readonly range: string | null;
  readonly ifRange: string | null;
  readonly authorized: boolean;
  readonly status: number;
}

/** The running origin. */
export interface CountingOrigin extends AsyncDisposable {
  /** The file's URL. */
  readonly url: string;
  /** Every request for the file. */
  readonly requests: SeenRequest[];
  /** Body bytes sent in all. */
  readonly sent: number;
  /** Settles once the first full response paused at `pauseAt`. */
  readonly paused: Promise<void>;
}

/** The ETag of the file. */
export const ETAG = '"v1"';

/** Starts the origin on a free loopback port. */
export function startCountingOrigin(options: CountingOriginOptions): CountingOrigin {
  let body = options.body;
  let etag = ETAG;
  let pause = options.pauseAt;
  const paused = Promise.withResolvers<void>();
  const requests: SeenRequest[] = [];
  let sent = 0;
  let cut = options.cutAfter;
  const abort = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: abort.signal,
    onListen: () => {},
  }, (request) => {
    const range = request.headers.get("range");
    const ifRange = request.headers.get("if-range");
    const authorized = options.authorization === undefined ||
      request.headers.get("authorization") === options.authorization;
    const { pathname, search } = new URL(request.url);
    const path = pathname + search;
    const seen = (status: number) => requests.push({ path, range, ifRange, authorized, status });
    if (!authorized) {
      seen(401);
      return new Response("who are you", { status: 401 });
    }
    const tagged = options.etag !== false;
    const headers = new Headers(tagged ? { etag, "accept-ranges": "bytes" } : {});
    if (tagged && request.headers.get("if-none-match") === etag) {
      seen(304);
      return new Response(null, { status: 304, headers });
    }
    const match = range === null || !tagged ? null : /^bytes=(\d+)-(\d*)$/.exec(range);
    const ranged = match !== null && (ifRange === null || ifRange === etag) &&
      Number(match[1]) < body.length;
    const start = ranged ? Number(match![1]) : 0;
    const stop = ranged && match![2] !== ""
      ? Math.min(body.length, Number(match![2]) + 1)
      : body.length;
    const status = ranged ? 206 : 200;
    if (status === 206) {
      headers.set("content-range", `bytes ${start}-${stop - 1}/${body.length}`);
    }
    if (!options.chunked) headers.set("content-length", String(stop - start));
    seen(status);
    const limit = status === 200 ? cut : undefined;
    if (status === 200) cut = undefined;
    const hold = status === 200 ? pause : undefined;
    if (status === 200) pause = undefined;
    const sending = body.subarray(0, stop);
    if (options.then !== undefined) {
      body = options.then;
      etag = options.thenEtag ?? etag;
    }
    let at = start;
    const gone = Promise.withResolvers<void>();
    const chunk = 256 << 10;
    // When each chunk is due: on a schedule, not a sleep after each, so that timers late on
    // a loaded machine do not slow the origin below its rate (it catches up, 50 ms at most).
    let due = performance.now();
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (at >= sending.length) return controller.close();
        if (limit !== undefined && at - start >= limit) {
          return controller.error(new Error("cut off on purpose"));
        }
        if (hold !== undefined && at - start >= hold) {
          paused.resolve();
          return await gone.promise;
        }
        const end = Math.min(
          sending.length,
          at + chunk,
          hold === undefined ? Infinity : start + hold,
        );
        if (options.rate !== undefined) {
          due = Math.max(due, performance.now() - 50) + ((end - at) / options.rate) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
        controller.enqueue(sending.slice(at, end));
        sent += end - at;
        at = end;
      },
      cancel: () => gone.resolve(),
    });
    return new Response(stream, { status, headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/model.bin`,
    requests,
    get sent() {
      return sent;
    },
    paused: paused.promise,
    [Symbol.asyncDispose]: async () => {
      abort.abort();
      await server.finished.catch(() => {});
    },
  };
}
