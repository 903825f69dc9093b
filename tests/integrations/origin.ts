/** A local origin server for the integration tests: serves given files and counts requests. */

/** One file the origin serves. */
export interface OriginFile {
  readonly body: string | Uint8Array<ArrayBuffer>;
  readonly headers?: Record<string, string>;
  readonly status?: number;
  /** Milliseconds to wait before answering. */
  readonly delay?: number;
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
    if (file.delay) await new Promise((resolve) => setTimeout(resolve, file.delay));
    const headers = new Headers(file.headers);
    const etag = headers.get("etag");
    const modified = headers.get("last-modified");
    if (
      (etag !== null && request.headers.get("if-none-match") === etag) ||
      (etag === null && modified !== null && request.headers.get("if-modified-since") === modified)
    ) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(file.body, { status: file.status ?? 200, headers });
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
