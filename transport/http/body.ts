/**
 * Request and response bodies of the HTTP server: JSON with a size limit,
 * uploads written into blobs chunk by chunk as they arrive, and blob bytes
 * streamed out in chunks.
 *
 * @module
 */
import type { Blob } from "../../core/blob.ts";
import type { MemfdSpool } from "../../native/spool.ts";
import { ProtocolError } from "../../core/errors.ts";
import type { ByteRange } from "./conditional.ts";
import { HttpStatusError, metaTooLarge, tooLarge } from "./errors.ts";
import { Header } from "./protocol.ts";

/** Bytes per chunk of a response body. */
const SEND_CHUNK = 1 << 20;

// A leading U+FEFF is text, as on every transport: JSON then refuses it.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Reads a JSON request body of at most `limit` bytes; an empty body gives `{}`.
 *
 * @throws {HttpStatusError} 413 when the body is larger than `limit`.
 * @throws {ProtocolError} When it is cut off or not JSON.
 */
export async function readJson(request: Request, limit: number): Promise<unknown> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    throw metaTooLarge(
      `Request body too large: ${declared} bytes, the limit is ${limit}: metadata is too large`,
    );
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of request.body ?? []) {
      total += chunk.length;
      if (total > limit) {
        throw metaTooLarge(
          `Request body too large: over the limit of ${limit} bytes: metadata is too large`,
        );
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof HttpStatusError) throw error;
    throw new ProtocolError(
      `Request body cut off after ${total} bytes: ${(error as Error).message}`,
    );
  }
  if (total === 0) return {};
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw new ProtocolError(`Malformed JSON body: ${(error as Error).message}`);
  }
}

/**
 * The length of an upload: `Content-Length`, else the `Packice-Size` of a
 * body streamed without one; undefined when there is neither and
 * `unknownOk`, for a server that can spool the body (see {@link spoolBody}).
 *
 * @throws {HttpStatusError} 411 when there is neither and not `unknownOk`, 413 above `limit`.
 */
export function uploadLength(request: Request, limit: number): number;
export function uploadLength(
  request: Request,
  limit: number,
  unknownOk: boolean,
): number | undefined;
export function uploadLength(
  request: Request,
  limit: number,
  unknownOk = false,
): number | undefined {
  const text = request.headers.get("content-length") ?? request.headers.get(Header.SIZE);
  if (text === null && unknownOk) return undefined;
  if (text === null) {
    throw new HttpStatusError(
      411,
      new ProtocolError(`Upload length required: send Content-Length or ${Header.SIZE}`),
    );
  }
  const length = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(length)) throw new ProtocolError(`Invalid upload length: ${text}`);
  if (length > limit) throw tooLarge(`Upload too large: ${length} bytes, the limit is ${limit}`);
  return length;
}

/**
 * Appends a request body of a length not declared to a spool as it
 * arrives, holding one chunk at a time.
 *
 * @param body The request body.
 * @param spool Where the bytes go.
 * @param limit The most bytes the body may carry.
 * @throws {HttpStatusError} 413 when the body carries more than `limit` bytes.
 * @throws {ProtocolError} When the body is cut off.
 */
export async function spoolBody(
  body: ReadableStream<Uint8Array> | null,
  spool: MemfdSpool,
  limit: number,
): Promise<void> {
  if (body === null) return;
  await eachChunk(body, () => `${spool.size} bytes`, (chunk) => {
    if (spool.size + chunk.length > limit) {
      throw tooLarge(`Upload too large: over the limit of ${limit} bytes`);
    }
    spool.write(chunk);
  });
}

/**
 * Writes exactly `length` bytes of a request body as they arrive, never
 * holding more than one chunk.
 *
 * @param body The request body.
 * @param length The bytes it must carry.
 * @param write Stores one chunk at its position in the body.
 * @param progress Called after each chunk, such as to keep a lease alive.
 * @throws {ProtocolError} When the body is cut off, shorter or longer than `length`.
 */
export async function receive(
  body: ReadableStream<Uint8Array> | null,
  length: number,
  write: (chunk: Uint8Array, at: number) => void | Promise<void>,
  progress?: () => void | Promise<void>,
): Promise<void> {
  let at = 0;
  if (body !== null) {
    await eachChunk(body, () => `${at} of ${length} bytes`, async (chunk) => {
      if (at + chunk.length > length) {
        throw new ProtocolError(`Upload longer than its declared ${length} bytes`);
      }
      await write(chunk, at);
      at += chunk.length;
      await progress?.();
    });
  }
  if (at !== length) throw new ProtocolError(`Upload ended after ${at} of ${length} bytes`);
}

/**
 * Hands each chunk of a request body to `take` as it arrives. A failed read
 * is an upload cut off after `received()`; when anything fails, the rest of
 * the body is not wanted: it is dropped rather than read.
 */
async function eachChunk(
  body: ReadableStream<Uint8Array>,
  received: () => string,
  take: (chunk: Uint8Array) => void | Promise<void>,
): Promise<void> {
  const reader = body.getReader();
  try {
    while (true) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (error) {
        throw new ProtocolError(
          `Upload cut off after ${received()}: ${(error as Error).message}`,
        );
      }
      if (next.done) return;
      const taken = take(next.value);
      if (taken !== undefined) await taken;
    }
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
}

/**
 * Streams a byte range of the concatenated blobs. With `views`, chunks are
 * zero-copy views of the blobs' memory where the backend has it, open until
 * the lease ends: the lease must then outlast the response, not just the
 * stream. Otherwise each chunk is a copy read from the blob. The first chunk
 * is read before the stream is returned, so an ended lease or a failing
 * backend is reported before any header is sent.
 *
 * @param blobs The blobs, under a lease.
 * @param range The bytes to send, end exclusive.
 * @param views Whether views may be sent.
 */
export async function blobStream(
  blobs: readonly Blob[],
  range: ByteRange,
  views: boolean,
): Promise<ReadableStream<Uint8Array>> {
  const chunks = chunksOf(blobs, range, views);
  let first: IteratorResult<Uint8Array, void> | undefined = await chunks.next();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = first ?? await chunks.next();
      first = undefined;
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await chunks.return(undefined);
    },
  }, { highWaterMark: 0 });
}

async function* chunksOf(
  blobs: readonly Blob[],
  range: ByteRange,
  views: boolean,
): AsyncGenerator<Uint8Array, void, undefined> {
  let blobStart = 0;
  for (const blob of blobs) {
    const from = Math.max(range.start - blobStart, 0);
    const to = Math.min(range.end - blobStart, blob.size);
    blobStart += blob.size;
    if (from >= to) continue;
    const view = views ? blob.openView() : undefined;
    for (let offset = from; offset < to; offset += SEND_CHUNK) {
      const end = Math.min(offset + SEND_CHUNK, to);
      yield view === undefined ? await blob.read(offset, end - offset) : view.subarray(offset, end);
    }
  }
}
