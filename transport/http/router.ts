import { InvalidArgumentError, NotFoundError } from "../../core/errors.ts";
import { methodNotAllowed } from "./errors.ts";

/** What a route handler gets. */
export interface RouteContext {
  /** The request. */
  readonly request: Request;
  /** Its parsed URL. */
  readonly url: URL;
  /** Path parameters, percent-decoded: `:id` gives `params.id`. */
  readonly params: Readonly<Record<string, string>>;
  /** The connection, and when the response has been sent. */
  readonly info: Deno.ServeHandlerInfo;
  /** The server's upload limits, which bytes a route sends to other daemons count against. */
  readonly uploads: RouteUploads;
  /**
   * Bytes `start` to `end` (exclusive) of the file `fd` (`size` bytes long,
   * and never shorter while sent; undefined while its length is unknown,
   * when the `Content-Range` total is `*`) as a 206 answer's body sent by the
   * server's native GET listener, when the request came through it: the
   * answer to return, and what settles once the bytes are out (true) or
   * were never claimed (false). Undefined to answer as usual.
   */
  readonly sendFile: (
    fd: number,
    size: number | undefined,
    range: { readonly start: number; readonly end: number },
    headers: Record<string, string>,
  ) => { response: Response; done: Promise<boolean> } | undefined;
}

/** The server's upload limits as a route sends bytes under them. */
export interface RouteUploads {
  /**
   * An upload slot for bytes of `id` sent to another daemon, waiting in line
   * as a relay's piece does; `signal` ends the wait.
   *
   * @returns What to call once the body is out (with false when it was not
   *   sent after all), when there is anything to free.
   * @throws {HttpStatusError} 503 when the line is full.
   */
  enter(
    id: string,
    asked: { readonly local: boolean; readonly range: string | null; readonly relay: boolean },
    signal?: AbortSignal,
  ): Promise<((sent?: boolean) => void) | undefined>;
  /** `bytes` as a body sent at the upload rate. */
  pace(bytes: Uint8Array<ArrayBuffer>): BodyInit;
}

/** Handles one route. */
export type RouteHandler = (context: RouteContext) => Response | Promise<Response>;

/** A matched route: its pattern names it in metrics. */
export interface RouteMatch {
  /** The method and pattern, such as `GET /v1/objects/:id`. */
  readonly route: string;
  /** The handler. */
  readonly handler: RouteHandler;
  /** Path parameters. */
  readonly params: Record<string, string>;
}

interface Route {
  readonly pattern: string;
  readonly segments: readonly string[];
  readonly methods: Map<string, RouteHandler>;
}

/** Maps method and path to a handler; patterns use `:name` segments. */
export class Router {
  readonly #routes: Route[] = [];

  /**
   * Adds a handler.
   *
   * @param method The method, upper case.
   * @param pattern The path, such as `/v1/objects/:id`.
   * @param handler What answers it.
   */
  add(method: string, pattern: string, handler: RouteHandler): this {
    let route = this.#routes.find((candidate) => candidate.pattern === pattern);
    if (route === undefined) {
      route = { pattern, segments: pattern.split("/").slice(1), methods: new Map() };
      this.#routes.push(route);
    }
    route.methods.set(method, handler);
    return this;
  }

  /**
   * Finds the handler of a request.
   *
   * @throws {NotFoundError} For a path no route has (404).
   * @throws {HttpStatusError} 405 for a method the path does not have.
   * @throws {InvalidArgumentError} For a parameter that is not valid percent-encoding.
   */
  match(method: string, pathname: string): RouteMatch {
    const segments = pathname.split("/").slice(1);
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, segments);
      if (params === undefined) continue;
      const handler = route.methods.get(method);
      if (handler === undefined) {
        throw methodNotAllowed(method, pathname, [...route.methods.keys()]);
      }
      return { route: `${method} ${route.pattern}`, handler, params };
    }
    throw new NotFoundError(`No route: ${pathname}`);
  }
}

function matchSegments(
  pattern: readonly string[],
  path: readonly string[],
): Record<string, string> | undefined {
  if (pattern.length !== path.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const expected = pattern[i]!;
    const actual = path[i]!;
    if (expected.startsWith(":")) {
      if (actual.length === 0) return undefined;
      params[expected.slice(1)] = decode(actual);
    } else if (expected !== actual) {
      return undefined;
    }
  }
  return params;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InvalidArgumentError(`Invalid path segment: ${segment}: not valid percent-encoding`);
  }
}
