/**
 * `Range` and `If-None-Match` for object bytes.
 *
 * @module
 */
import { badRange } from "./errors.ts";

/** A byte range, end exclusive. */
export interface ByteRange {
  /** The first byte. */
  readonly start: number;
  /** One past the last byte. */
  readonly end: number;
}

/**
 * The single range a `Range` header asks for, or undefined to send the whole
 * object: no header, a unit other than bytes, or several ranges (RFC 9110
 * lets a server ignore `Range`; a multipart body would cost clients more than
 * the whole object for the few that ask).
 *
 * @throws {HttpStatusError} 416 for a malformed or unsatisfiable range.
 */
export function parseRange(header: string | null, size: number): ByteRange | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (!/^bytes\s*=/i.test(text)) return undefined;
  const spec = text.slice(text.indexOf("=") + 1).trim();
  if (spec.includes(",")) return undefined;
  const match = /^(\d*)-(\d*)$/.exec(spec);
  if (match === null || (match[1] === "" && match[2] === "")) {
    throw badRange(`Malformed range: ${header}`, size);
  }
  const [, first, last] = match as unknown as [string, string, string];
  let start: number;
  let end: number;
  if (first === "") {
    // A suffix: the last N bytes.
    const length = Number(last);
    if (length === 0) throw badRange(`Unsatisfiable range: ${header}: empty suffix`, size);
    start = Math.max(0, size - length);
    end = size;
  } else {
    start = Number(first);
    end = last === "" ? size : Math.min(Number(last) + 1, size);
    if (last !== "" && Number(last) < start) throw badRange(`Malformed range: ${header}`, size);
  }
  if (start >= size) {
    throw badRange(`Unsatisfiable range: ${header}: the object holds ${size} bytes`, size);
  }
  return { start, end };
}

/**
 * Whether `If-None-Match` matches the entity tag, by weak comparison: `*`
 * or any listed tag equal to `etag` once `W/` is dropped.
 */
export function noneMatch(header: string | null, etag: string): boolean {
  if (header === null) return false;
  const strip = (tag: string) => tag.trim().replace(/^W\//, "");
  const wanted = strip(etag);
  return header.split(",").some((tag) => tag.trim() === "*" || strip(tag) === wanted);
}
