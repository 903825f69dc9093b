/** A local origin server for the integration tests: serves given files and counts requests. */

/** One file the origin serves. */
export interface OriginFile {
  /** The body, or a function of how many times the file was asked for before. */
  readonly body: string | Uint8Array<ArrayBuffer> | ((asked: number) => string);
  /** Answers conditional requests with the whole body, as some servers do. */
  readonly ignoresConditions?: boolean;
  readonly headers?: Record<string, string>;
  readonly status?: number;
  /** Milliseconds to wait before answering, or a function of how many times the file was asked for. */
  readonly delay?: number | ((asked: number) => number);
}

/** The origin, its URL and what it was asked. */
export interface Origin extends AsyncDisposable {
  readonly url: string;
  /** Every request, as `METHOD path`, with its conditional headers when sent. */
  readonly requests: string[];
  /** Requests whose path starts with `prefix`. */
  count(prefix?: string): number;
}

/**
 * Starts `Deno.serve` on a free loopback port. Paths map to files; a file with an
 * `etag` header answers `If-None-Match` with 304, one with `last-modified` answers
 * `If-Modified-Since` with 304.
 */
export function startOrigin(files: Record<string, OriginFile>): Origin {
  const requests: string[] = [];
  const abort = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: abort.signal,
    onListen: () => {},
  }, async (request) => {
    const path = new URL(request.url).pathname;
    const conditional = [
      request.headers.get("if-none-match"),
      request.headers.get("if-modified-since"),
    ].filter((value) => value !== null);
    requests.push(`${request.method} ${path}${conditional.length ? ` ${conditional}` : ""}`);
    const file = files[path];
    if (file === undefined) return new Response("not found", { status: 404 });
    const asked = requests.filter((line) => line.split(" ")[1] === path).length - 1;
    const delay = typeof file.delay === "function" ? file.delay(asked) : file.delay ?? 0;
    if (delay > 0) await sleep(delay, abort.signal);
    const headers = new Headers(file.headers);
    const etag = headers.get("etag");
    const modified = headers.get("last-modified");
    const notModified = (etag !== null && request.headers.get("if-none-match") === etag) ||
      (etag === null && modified !== null && request.headers.get("if-modified-since") === modified);
    if (notModified && file.ignoresConditions !== true) {
      return new Response(null, { status: 304, headers });
    }
    const body = typeof file.body === "function" ? file.body(asked) : file.body;
    return new Response(body, { status: file.status ?? 200, headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    count: (prefix = "") =>
      requests.filter((line) => line.split(" ")[1]!.startsWith(prefix)).length,
    [Symbol.asyncDispose]: async () => {
      abort.abort();
      await server.finished;
    },
  };
}

/** Waits, or stops waiting when the server stops. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
