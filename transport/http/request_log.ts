/** One answered HTTP request, as {@link HttpServerOptions.onRequest} gets it. */
export interface HttpRequestEntry {
  /** The method, such as `GET`. */
  readonly method: string;
  /** The path, percent-encoded as it came, without the query. */
  readonly path: string;
  /** The route that matched, such as `GET /v1/objects/:id`, or `unmatched`. */
  readonly route: string;
  /** The response status. */
  readonly status: number;
  /** Milliseconds from the request to the response headers. */
  readonly ms: number;
  /** The client's address, `host:port`. */
  readonly remote: string;
  /** For a refused request (4xx, 5xx): the error's code and message. */
  readonly error?: { readonly code: string; readonly message: string };
}

/**
 * One log line for a request: method, path, status, time, client and, when
 * refused, why. Never a header, so never a token.
 *
 * @example
 * ```ts
 * import { formatRequest } from "@packice/packice";
 * console.log(formatRequest({
 *   method: "GET", path: "/v1/objects/a", route: "GET /v1/objects/:id",
 *   status: 404, ms: 0.4, remote: "127.0.0.1:5000",
 *   error: { code: "NOT_FOUND", message: "No object: a" },
 * }));
 * // "HTTP GET /v1/objects/a 404 0.4ms from 127.0.0.1:5000: NOT_FOUND: No object: a"
 * ```
 */
export function formatRequest(entry: HttpRequestEntry): string {
  const line = `HTTP ${entry.method} ${entry.path} ${entry.status} ${
    entry.ms.toFixed(1)
  }ms from ${entry.remote}`;
  return entry.error === undefined ? line : `${line}: ${entry.error.code}: ${entry.error.message}`;
}
