/**
 * Errors on the HTTP wire: the one place that maps error codes to HTTP
 * statuses, and the JSON error body both sides share.
 *
 * @module
 */
import {
  asPackiceError,
  ErrorCode,
  errorFromCode,
  InvalidArgumentError,
  type PackiceError,
  ProtocolError,
} from "../../core/errors.ts";
import type { ErrorBody } from "./protocol.ts";

/** The HTTP status of each error code. */
const STATUS: Record<ErrorCode, number> = {
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  NOT_SEALED: 409,
  ALREADY_SEALED: 409,
  LEASE_EXPIRED: 410,
  UNKNOWN_LEASE: 404,
  WRONG_ACCESS: 403,
  INVALID_ARGUMENT: 400,
  CAPACITY_EXCEEDED: 507,
  NATIVE_UNAVAILABLE: 503,
  STORE_UNAVAILABLE: 503,
  UNAUTHORIZED: 401,
  PROTOCOL: 400,
  UNSUPPORTED: 501,
  CLOSED: 503,
  INTERNAL: 500,
  CONFLICT: 409,
};

/**
 * An error the HTTP layer raises with a status more precise than its code's:
 * 405, 413 and 416 carry the codes PROTOCOL and INVALID_ARGUMENT.
 */
export class HttpStatusError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The error sent to the client. */
  readonly error: PackiceError;
  /** Extra response headers, such as `Allow` or `Content-Range`. */
  readonly headers: Record<string, string>;

  /**
   * @param status The HTTP status.
   * @param error The error sent to the client.
   * @param headers Extra response headers.
   */
  constructor(status: number, error: PackiceError, headers: Record<string, string> = {}) {
    super(error.message, { cause: error });
    this.status = status;
    this.error = error;
    this.headers = headers;
  }
}

/** 405: the path exists, the method does not. */
export function methodNotAllowed(
  method: string,
  path: string,
  allow: readonly string[],
): HttpStatusError {
  return new HttpStatusError(
    405,
    new ProtocolError(`Method not allowed: ${method} ${path} (allowed: ${allow.join(", ")})`),
    { allow: allow.join(", ") },
  );
}

/** 413: a body or header larger than the server accepts. */
export function tooLarge(message: string): HttpStatusError {
  return new HttpStatusError(413, new ProtocolError(message));
}

/**
 * 413 for metadata over its limit, with the code an in-process peer gives
 * for it: INVALID_ARGUMENT, so that every transport answers alike.
 */
export function metaTooLarge(message: string): HttpStatusError {
  return new HttpStatusError(413, new InvalidArgumentError(message));
}

/** 416: a `Range` the object cannot satisfy. */
export function badRange(message: string, size: number): HttpStatusError {
  return new HttpStatusError(416, new InvalidArgumentError(message), {
    "content-range": `bytes */${size}`,
  });
}

/**
 * The status, headers and Packice error of anything thrown while handling a
 * request; errors that are not Packice errors become INTERNAL (500).
 */
export function describeError(
  thrown: unknown,
): { status: number; error: PackiceError; headers: Record<string, string> } {
  if (thrown instanceof HttpStatusError) {
    return { status: thrown.status, error: thrown.error, headers: thrown.headers };
  }
  const error = asPackiceError(thrown);
  // RFC 9110: a 401 says how to authenticate.
  const headers: Record<string, string> = error.code === ErrorCode.UNAUTHORIZED
    ? { "www-authenticate": 'Bearer realm="packice"' }
    : {};
  return { status: STATUS[error.code] ?? 500, error, headers };
}

/** The JSON body of an error's response, `{ "error": { "code", "message" } }`. */
export function errorBody(error: PackiceError): string {
  const body: ErrorBody = { error: error.toJSON() };
  return JSON.stringify(body);
}

/** The JSON response of an error, `{ "error": { "code", "message" } }`. */
export function errorResponse(
  status: number,
  error: PackiceError,
  headers: Record<string, string> = {},
  head = false,
): Response {
  return new Response(head ? null : errorBody(error), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * Rebuilds the error of a failed response, by its code, as the same class a
 * caller in process would see. Consumes the body.
 */
export async function errorOf(response: Response): Promise<PackiceError> {
  let text = "";
  try {
    text = await response.text();
    const body = JSON.parse(text) as Partial<ErrorBody>;
    const { code, message } = body.error ?? {};
    if (typeof code === "string" && typeof message === "string") {
      return errorFromCode(code, message);
    }
  } catch {
    // Not our error body: a proxy or a server of another kind answered.
  }
  const detail = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  const code = response.status === 401 ? ErrorCode.UNAUTHORIZED : ErrorCode.PROTOCOL;
  return errorFromCode(code, `Unexpected HTTP ${response.status} response: ${detail}`);
}
