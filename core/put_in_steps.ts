/** A put through the four steps every peer offers: acquire CREATE, write, seal, release. */
import { Access } from "./lease.ts";
import type { ObjectInfo } from "./object.ts";
import type { AcquireOptions, Peer } from "./peer.ts";

/**
 * Puts an object of one blob through any peer's steps: acquires a CREATE
 * lease, writes the chunks one after another, seals, and releases the lease
 * whatever happened (an unsealed object goes with it). For a peer without a
 * one-step put (`DirectPut.putObject`), or a caller that needs the steps.
 *
 * @param peer The peer.
 * @param id The object's id, or undefined for a new one.
 * @param chunks The bytes, in order; their lengths add up to `options.size`.
 * @param options The CREATE's options, with the size.
 * @returns The sealed object.
 *
 * @example Put two chunks
 * ```ts ignore
 * const info = await putInSteps(peer, "greeting", [hello, world], { size: 10 });
 * ```
 */
export async function putInSteps(
  peer: Peer,
  id: string | undefined,
  chunks: readonly Uint8Array[],
  options: AcquireOptions,
): Promise<ObjectInfo> {
  const { lease, blobs } = await peer.acquire(id, Access.CREATE, options);
  try {
    let at = 0;
    for (const chunk of chunks) {
      await blobs[0]!.write(at, chunk);
      at += chunk.length;
    }
    return await peer.seal(lease.id);
  } finally {
    await peer.release(lease.id).catch(() => {});
  }
}
