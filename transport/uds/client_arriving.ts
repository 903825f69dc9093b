/**
 * The client side of ARRIVE: an object still on its way to the daemon,
 * streamed as its pieces verify there, one ARRIVE_NEXT a chunk.
 *
 * @module
 */
import type { ObjectInfo } from "../../core/object.ts";
import type { ArrivingObject } from "../../core/peer.ts";
import { ErrorCode, ProtocolError } from "../../core/errors.ts";
import { isPlainObject } from "../../core/plain_object.ts";
import { decodeJson, Op } from "./protocol.ts";
import { isFromDaemon, none, type Requests } from "./requests.ts";

/**
 * Asks the daemon for `objectId` as it arrives.
 *
 * @returns Undefined when the daemon holds it already, or knows no ARRIVE
 *   (read it with a lease).
 */
export async function readArriving(
  requests: Pick<Requests, "call">,
  objectId: string,
): Promise<ArrivingObject | undefined> {
  let reply: unknown;
  try {
    reply = await requests.call(Op.ARRIVE, objectId, decodeJson);
  } catch (error) {
    // A daemon from before ARRIVE: the object is read once it is sealed.
    if (
      error instanceof ProtocolError && error.code === ErrorCode.PROTOCOL && isFromDaemon(error)
    ) {
      return undefined;
    }
    throw error;
  }
  if (reply === null) return undefined;
  if (!isPlainObject(reply) || typeof reply.stream !== "number" || !isPlainObject(reply.object)) {
    throw new ProtocolError("Malformed ARRIVE reply: expected { object, stream }");
  }
  const stream = String(reply.stream);
  let done = false;
  const body = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      // A copy: the reply's bytes are only valid during the decode.
      const bytes = await requests.call(Op.ARRIVE_NEXT, stream, (body) => body.slice());
      if (bytes.length === 0) {
        done = true;
        controller.close();
      } else {
        controller.enqueue(bytes);
      }
    },
    cancel: async () => {
      if (!done) await requests.call(Op.ARRIVE_CANCEL, stream, none).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return { object: reply.object as unknown as ObjectInfo, body };
}
