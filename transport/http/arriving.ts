/**
 * An object still arriving at a daemon, over HTTP: the daemon sends it as
 * its verified pieces land (`GET /v1/objects/:id` with `Packice-State:
 * CREATING`), and the client reads that response as an {@link ArrivingObject}.
 *
 * @module
 */
import { ProtocolError, StoreUnavailableError } from "../../core/errors.ts";
import type { ObjectInfo } from "../../core/object.ts";
import type { ArrivingObject } from "../../core/peer.ts";
import { Header } from "./protocol.ts";

/**
 * The object and bytes of a response to `GET /v1/objects/:id`. The body
 * fails with `StoreUnavailableError` when it ends before its last byte (the
 * daemon's fetch failed, or the connection broke) and with `ProtocolError`
 * when it runs past it.
 *
 * @throws {ProtocolError} For a response without a length or with malformed metadata.
 */
export function arrivingOf(id: string, response: Response): ArrivingObject {
  const length = response.headers.get("content-length");
  if (length === null || !/^\d+$/.test(length) || response.body === null) {
    throw new ProtocolError(`Malformed response for object ${id}: no Content-Length`);
  }
  const size = Number(length);
  const etag = response.headers.get("etag");
  const object: ObjectInfo = {
    id,
    state: response.headers.get(Header.STATE) === "CREATING" ? "CREATING" : "SEALED",
    size,
    blobSizes: [size],
    meta: metaOf(id, response.headers.get(Header.META)),
    createdAt: 0,
    ...(etag === null ? {} : { digest: etag.replace(/^"|"$/g, "") }),
  };
  const reader = response.body.getReader();
  let at = 0;
  const body = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (error) {
        throw new StoreUnavailableError(
          `Cannot read object ${id}: its bytes stopped after ${at} of ${size}: ${
            (error as Error).message
          }`,
          { cause: error },
        );
      }
      if (next.done) {
        if (at !== size) {
          throw new StoreUnavailableError(
            `Cannot read object ${id}: its bytes stopped after ${at} of ${size}`,
          );
        }
        controller.close();
        return;
      }
      at += next.value.length;
      if (at > size) throw new ProtocolError(`Response for object ${id} longer than ${size} bytes`);
      controller.enqueue(next.value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
  return { object, body };
}

function metaOf(id: string, text: string | null): ObjectInfo["meta"] {
  if (text === null) return {};
  try {
    const meta = JSON.parse(text);
    if (meta !== null && typeof meta === "object" && !Array.isArray(meta)) return meta;
  } catch {
    // Refused below.
  }
  throw new ProtocolError(`Malformed ${Header.META} header for object ${id}`);
}
