/**
 * The headers of a response that carries object bytes: type, length,
 * entity tag, and the range sent. `conditional.ts` reads the request side
 * (`Range`, `If-None-Match`).
 *
 * @module
 */
import type { ObjectInfo } from "../../core/object.ts";
import type { ByteRange } from "./conditional.ts";
import { CONTENT_TYPE_KEY, Header, headerJson } from "./protocol.ts";

/** The entity tag of an object: its digest, quoted. */
export function etagOf(digest: string): string {
  return `"${digest}"`;
}

/** 304 Not Modified, with the entity tag the request matched. */
export function notModified(digest: string): Response {
  return new Response(null, { status: 304, headers: { etag: etagOf(digest) } });
}

/**
 * Headers of an object's bytes; `Content-Type` from `meta["content-type"]`,
 * the whole metadata in `Packice-Meta` when there is any. Without a digest
 * (an object still on its way) no entity tag, and no length while it lists
 * no blob (its size not known yet).
 */
export function objectHeaders(object: ObjectInfo, digest?: string): Record<string, string> {
  const type = object.meta[CONTENT_TYPE_KEY];
  const valid = typeof type === "string" && /^[\x20-\x7e]+$/.test(type);
  const headers: Record<string, string> = {
    "content-type": valid ? type : "application/octet-stream",
    "accept-ranges": "bytes",
  };
  if (object.blobSizes.length > 0) headers["content-length"] = String(object.size);
  if (digest !== undefined) headers.etag = etagOf(digest);
  for (const _ in object.meta) {
    headers[Header.META] = headerJson(object.meta);
    break;
  }
  return headers;
}

/**
 * The bytes a response sends of `size` and its status: the range asked
 * for (206, with `Content-Range` and its length set in `headers`), else all
 * of them (200).
 */
export function sentRange(
  range: ByteRange | undefined,
  size: number,
  headers: Record<string, string>,
): { bytes: ByteRange; status: 200 | 206 } {
  if (range === undefined) return { bytes: { start: 0, end: size }, status: 200 };
  headers["content-range"] = `bytes ${range.start}-${range.end - 1}/${size}`;
  headers["content-length"] = String(range.end - range.start);
  return { bytes: range, status: 206 };
}
