import type { Client, PutOptions } from "../client/mod.ts";
import { Access } from "../core/lease.ts";
import type { ObjectInfo } from "../core/object.ts";
import { putFromReader, type Reader } from "../integrations/file_io.ts";
import { Progress } from "./progress.ts";

/** Bytes moved per system call, and the most held in JS memory at once where no mapping exists. */
const CHUNK = 8 << 20;

/** Something bytes can be written to, partially per call: a file or stdout. */
export interface Sink {
  write(bytes: Uint8Array): Promise<number>;
}

/**
 * Stores a file of known size: read straight into the object's memory where
 * the peer maps it (a local daemon), else in chunks through `write`; with a
 * progress bar.
 *
 * @returns The sealed object's id.
 */
export async function putSized(
  client: Client,
  source: Reader,
  size: number,
  options: PutOptions,
  label: string,
): Promise<string> {
  const progress = new Progress(label, size);
  const id = await putFromReader(client, source, size, options, {
    piece: CHUNK,
    step: CHUNK,
    onRead: (bytes) => progress.add(bytes),
    changed: (how) =>
      how === "shrank"
        ? new Deno.errors.UnexpectedEof(`${label}: input shrank while read`)
        : new Deno.errors.InvalidData(`${label}: input grew while read`),
  });
  progress.finish();
  return id;
}

/** Stores a stream of unknown length, such as a pipe, with a progress bar of bytes and rate. */
export async function putStream(
  client: Client,
  stream: ReadableStream<Uint8Array>,
  options: PutOptions,
  label: string,
): Promise<string> {
  const progress = new Progress(label, undefined);
  const counted = stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        progress.add(chunk.length);
        controller.enqueue(chunk);
      },
    }),
  );
  try {
    return await client.put(counted, options);
  } finally {
    progress.finish();
  }
}

/**
 * Writes an object to a sink: from the mapping itself where the peer maps it
 * (a local daemon), else in ranged reads of {@link CHUNK} bytes.
 * With a label, a progress bar.
 *
 * @returns What the peer said of the object.
 */
export async function getTo(
  client: Client,
  id: string,
  sink: Sink,
  label: string | undefined,
): Promise<ObjectInfo> {
  const peer = client.peer;
  const { lease, object, blobs } = await peer.acquire(id, Access.READ);
  try {
    // No label, no bar: the bytes themselves go to the terminal.
    const progress = label === undefined ? undefined : new Progress(label, object.size);
    for (const blob of blobs) {
      const view = blob.openView();
      try {
        for (let at = 0; at < blob.size; at += CHUNK) {
          const length = Math.min(CHUNK, blob.size - at);
          const bytes = view?.subarray(at, at + length) ?? await blob.read(at, length);
          await writeAll(sink, bytes);
          progress?.add(length);
        }
      } finally {
        if (view !== undefined) blob.closeView(view);
      }
    }
    progress?.finish();
    return object;
  } finally {
    await peer.release(lease.id).catch(() => {});
  }
}

/** Writes all of `bytes` to a sink that may take part of them per call. */
export async function writeAll(sink: Sink, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await sink.write(bytes.subarray(at));
}
