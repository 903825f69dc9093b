/**
 * Bodies in and out of Packice: a stream written into a new object without
 * holding it whole, and an object read out as a byte stream.
 */
import type { Client } from "../client/client.ts";
import type { ObjectHandle } from "../client/object_handle.ts";
import type { Meta } from "../core/validate.ts";

/** Writes to a peer without memory of its own go out in pieces of at least this size. */
const WRITE_BATCH = 1 << 20;

/**
 * Stores a stream as a new sealed object and returns its id.
 *
 * With `size` known (a `Content-Length`), the bytes go straight into the new
 * object as they arrive, and memory stays bounded whatever the size; a body
 * that turns out longer or shorter is refused and nothing is stored. Without
 * it, `client.put(stream)` stores it (which holds the whole body until the
 * client learns to store a stream of unknown length in bounded memory).
 *
 * @throws {TypeError} When the body's length differs from `size`.
 */
export async function putBody(
  client: Client,
  body: ReadableStream<Uint8Array>,
  options: { id: string; meta?: Meta; size?: number },
): Promise<string> {
  const { id, size } = options;
  const meta = options.meta === undefined ? {} : { meta: options.meta };
  if (size === undefined) return await client.put(body, { id, ...meta });
  const reader = body.getReader();
  try {
    await using writer = await client.create(size, { id, ...meta });
    const buffer = writer.buffer;
    // Without memory of the peer's own, pieces gather in one batch buffer, so a write
    // carries at least WRITE_BATCH bytes and no chunk is held after its turn.
    const batch = buffer === undefined ? new Uint8Array(Math.min(WRITE_BATCH, size)) : undefined;
    let written = 0;
    let batched = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (written + batched + value.length > size) throw lengthMismatch(size, "longer");
      if (batch === undefined) {
        buffer!.set(value, written);
        written += value.length;
        continue;
      }
      for (let taken = 0; taken < value.length;) {
        const piece = value.subarray(taken, taken + batch.length - batched);
        batch.set(piece, batched);
        batched += piece.length;
        taken += piece.length;
        if (batched === batch.length) {
          await writer.write(batch, written);
          written += batched;
          batched = 0;
        }
      }
    }
    if (batched > 0) await writer.write(batch!.subarray(0, batched), written);
    if (written + batched !== size) throw lengthMismatch(size, "shorter");
    await writer.seal();
    return writer.id;
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
}

/**
 * The bytes of an open handle as a byte stream that closes the handle when
 * it ends, is cancelled or fails. Each chunk is copied straight out of the
 * handle's bytes (shared memory where the peer maps it) into a buffer the
 * reader owns, so chunks stay valid after the lease ends; a BYOB reader gets
 * them in its own buffer. Nothing is read ahead of the reader: a handle got
 * with `lazy: true` over HTTP reads a range (4 MiB, or the BYOB reader's
 * buffer) per pull, and never holds the object whole.
 */
export function bodyStream(handle: ObjectHandle): ReadableStream<Uint8Array> {
  let offset = 0;
  const close = () => {
    unreadBodies.unregister(handle);
    return handle.close();
  };
  const stream = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: Math.max(1, Math.min(handle.readChunk, handle.size)),
    pull: async (controller) => {
      const request = controller.byobRequest!;
      const view = request.view!;
      let length: number;
      try {
        length = await handle.readInto(
          offset,
          new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
        );
      } catch (error) {
        await close();
        throw error;
      }
      if (length === 0) {
        await close();
        controller.close();
        request.respond(0);
        return;
      }
      offset += length;
      request.respond(length);
    },
    cancel: close,
  });
  unreadBodies.register(stream, handle, handle);
  return stream;
}

/**
 * A backstop for bodies dropped unread (`if (await cache.match(url))`): once
 * nothing can read a body stream any more, its lease ends. Reading to the end
 * or cancelling ends it at once; garbage collection is only the safety net.
 * No view of the handle's memory ever leaves the stream, so closing it then
 * is safe.
 */
const unreadBodies = new FinalizationRegistry<ObjectHandle>((handle) => void handle.close());

function lengthMismatch(size: number, how: string): TypeError {
  return new TypeError(`Cannot store body: ${how} than its declared length of ${size} bytes`);
}
