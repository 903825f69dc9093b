import { InvalidArgumentError } from "./errors.ts";
import { type Access, isAccess } from "./lease.ts";
import { isPlainObject } from "./plain_object.ts";
import { shown } from "./shown.ts";

/** The longest object id, in UTF-8 bytes. */
export const MAX_ID_BYTES = 250;
/** The largest metadata object, in bytes of its JSON form. */
export const MAX_META_BYTES = 64 * 1024;
/** The most blobs one object may have: as many memfds as one Unix-socket message carries. */
export const MAX_BLOBS = 253;
/** The longest lease id, in UTF-16 code units. */
export const MAX_LEASE_ID_LENGTH = 255;

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
    throw new InvalidArgumentError(`Invalid object id: expected a string, got ${shown(id)}`);
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
 * Checks a lease id: a string of 1 to {@link MAX_LEASE_ID_LENGTH} code
 * units. Whether a peer granted it is the peer's to say.
 *
 * @throws {InvalidArgumentError} When it is not such a string.
 */
export function validateLeaseId(id: unknown): string {
  if (typeof id !== "string" || id.length === 0 || id.length > MAX_LEASE_ID_LENGTH) {
    throw new InvalidArgumentError(
      `Invalid lease id: expected a string of 1 to ${MAX_LEASE_ID_LENGTH} characters, got ${
        shown(id)
      }`,
    );
  }
  return id;
}

/**
 * Checks an access: `READ`, `CREATE` or `WRITE`.
 *
 * @throws {InvalidArgumentError} When it is none of them.
 */
export function validateAccess(access: unknown): Access {
  if (!isAccess(access)) {
    throw new InvalidArgumentError(
      `Invalid access: expected "READ", "CREATE" or "WRITE", got ${shown(access)}`,
    );
  }
  return access;
}

/**
 * Checks the size of a new object: a byte count, which makes one blob, or a
 * non-empty array of at most {@link MAX_BLOBS} byte counts, one per blob.
 *
 * @returns The size of each blob, a new array.
 * @throws {InvalidArgumentError} When it is neither.
 */
export function validateBlobSizes(size: unknown): number[] {
  if (typeof size === "number") return [validateSize(size, "size")];
  if (!Array.isArray(size) || size.length === 0 || size.length > MAX_BLOBS) {
    throw new InvalidArgumentError(
      `Invalid size: expected a non-negative integer, or an array of 1 to ${MAX_BLOBS} of them, got ${
        shown(size)
      }`,
    );
  }
  return size.map((blob: unknown, index) => validateSize(blob, `size of blob ${index}`));
}

/**
 * Checks metadata: a plain JSON object whose JSON form is at most
 * {@link MAX_META_BYTES} bytes. Returns a detached copy.
 *
 * @throws {InvalidArgumentError} When it is not a plain object, does not survive JSON, or is too large.
 */
export function validateMeta(meta: unknown): Meta {
  if (meta === undefined) return {};
  if (!isPlainObject(meta)) {
    throw new InvalidArgumentError(
      `Invalid metadata: expected a plain JSON object, got ${shown(meta)}`,
    );
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
      `Invalid ${what}: expected a non-negative integer, got ${shown(value)}`,
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
      `Invalid ttl: expected a positive integer of milliseconds, got ${shown(ttl)}`,
    );
  }
  return ttl;
}

/** A new random object or lease id. */
export function newId(): string {
  return crypto.randomUUID();
}
