import { InvalidArgumentError } from "./errors.ts";

/** The longest object id, in UTF-8 bytes. */
export const MAX_ID_BYTES = 250;
/** The largest metadata object, in bytes of its JSON form. */
export const MAX_META_BYTES = 64 * 1024;

/** Metadata of an object: a plain JSON object. */
export type Meta = { [key: string]: JsonValue };
/** Any value JSON can carry. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

const encoder = new TextEncoder();
// deno-lint-ignore no-control-regex
const forbidden = /[\u0000-\u001f\u007f/\\]/;

/**
 * Checks an object id: 1 to {@link MAX_ID_BYTES} bytes, no path separators,
 * no control characters, and not `.` or `..`, so an id is safe as a file name.
 *
 * @throws {InvalidArgumentError} When the id breaks a rule.
 */
export function validateObjectId(id: unknown): string {
  if (typeof id !== "string") {
    throw new InvalidArgumentError(`Invalid object id: expected a string, got ${typeof id}`);
  }
  if (id.length === 0) throw new InvalidArgumentError("Invalid object id: empty");
  if (id === "." || id === "..") throw new InvalidArgumentError(`Invalid object id: "${id}"`);
  if (forbidden.test(id)) {
    throw new InvalidArgumentError(
      `Invalid object id: contains a path separator or control character: ${JSON.stringify(id)}`,
    );
  }
  // UTF-8 takes at most three bytes per UTF-16 unit: most ids need no encoding to check.
  if (
    id.length > MAX_ID_BYTES ||
    (id.length * 3 > MAX_ID_BYTES && encoder.encode(id).length > MAX_ID_BYTES)
  ) {
    throw new InvalidArgumentError(`Invalid object id: longer than ${MAX_ID_BYTES} bytes`);
  }
  return id;
}

/**
 * Checks metadata: a plain JSON object whose JSON form is at most
 * {@link MAX_META_BYTES} bytes. Returns a detached copy.
 *
 * @throws {InvalidArgumentError} When it is not a plain object, does not survive JSON, or is too large.
 */
export function validateMeta(meta: unknown): Meta {
  if (meta === undefined) return {};
  if (meta === null || typeof meta !== "object" || Array.isArray(meta)) {
    throw new InvalidArgumentError("Invalid metadata: expected a plain JSON object");
  }
  const proto = Object.getPrototypeOf(meta);
  if (proto !== Object.prototype && proto !== null) {
    throw new InvalidArgumentError("Invalid metadata: expected a plain JSON object");
  }
  let json: string;
  try {
    json = JSON.stringify(meta);
  } catch (error) {
    throw new InvalidArgumentError(`Invalid metadata: not serializable as JSON: ${error}`);
  }
  if (encoder.encode(json).length > MAX_META_BYTES) {
    throw new InvalidArgumentError(`Invalid metadata: larger than ${MAX_META_BYTES} bytes as JSON`);
  }
  return JSON.parse(json);
}

/**
 * Checks a byte size or offset: a safe, non-negative integer.
 *
 * @throws {InvalidArgumentError} When it is not.
 */
export function validateSize(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(
      `Invalid ${what}: expected a non-negative integer, got ${value}`,
    );
  }
  return value;
}

/**
 * Checks a TTL in milliseconds: undefined (no expiry) or a positive integer.
 *
 * @throws {InvalidArgumentError} When it is neither.
 */
export function validateTtl(ttl: unknown): number | undefined {
  if (ttl === undefined) return undefined;
  if (typeof ttl !== "number" || !Number.isSafeInteger(ttl) || ttl <= 0) {
    throw new InvalidArgumentError(
      `Invalid ttl: expected a positive integer of milliseconds, got ${ttl}`,
    );
  }
  return ttl;
}

/** A new random object or lease id. */
export function newId(): string {
  return crypto.randomUUID();
}
