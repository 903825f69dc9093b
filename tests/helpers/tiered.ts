/** Helpers of the TieredPeer tests: temporary data directories and recognisable bytes. */
import { type Client, connect, TieredPeer, type TieredPeerOptions } from "../../mod.ts";
import { assertEquals } from "./assert.ts";

/** A temporary directory, removed with everything in it when disposed. */
export interface TempDir extends AsyncDisposable {
  readonly path: string;
}

/** Makes a temporary directory for a data directory. */
export async function tempDir(): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix: "packice-tiered-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** A tiered peer and a client on it, closed together. */
export interface TieredFixture extends AsyncDisposable {
  readonly peer: TieredPeer;
  readonly client: Client;
}

/** Opens a tiered peer on `dir` with sweeps only on demand, and a client on it. */
export async function openTiered(
  dir: string,
  options: Omit<TieredPeerOptions, "dir"> = {},
): Promise<TieredFixture> {
  const peer = await TieredPeer.open({ dir, sweepInterval: 0, ...options });
  const client = await connect(peer);
  return {
    peer,
    client,
    [Symbol.asyncDispose]: async () => {
      await client.close();
      await peer.close();
    },
  };
}

/** Opens a tiered peer, as {@link openTiered}, on a temporary directory removed after it closes. */
export async function openTempTiered(
  options: Omit<TieredPeerOptions, "dir"> = {},
): Promise<TieredFixture> {
  const dir = await tempDir();
  try {
    const tiered = await openTiered(dir.path, options);
    return {
      peer: tiered.peer,
      client: tiered.client,
      [Symbol.asyncDispose]: async () => {
        await using _dir = dir;
        await tiered[Symbol.asyncDispose]();
      },
    };
  } catch (error) {
    await dir[Symbol.asyncDispose]();
    throw error;
  }
}

/** Bytes that tell objects apart: byte `i` of object `id` depends on both. */
export function pattern(id: string, size: number): Uint8Array {
  let seed = 0;
  for (const char of id) seed = (seed * 31 + char.charCodeAt(0)) >>> 0;
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (seed + i * 7 + (i >> 12)) & 0xff;
  return bytes;
}

/**
 * Puts object `id` filled with {@link pattern}, then waits for the moves it
 * started, so that where each object ends up does not depend on disk speed.
 */
export async function putSettled(
  { client, peer }: TieredFixture,
  id: string,
  size: number,
): Promise<void> {
  await client.put(pattern(id, size), { id, meta: { size } });
  await peer.settled();
}

/** Asserts that object `id` reads back as {@link pattern} of its size. */
export async function assertPattern(client: Client, id: string): Promise<void> {
  await using handle = await client.get(id);
  assertEquals(handle.bytes, pattern(id, handle.size), `bytes of ${id}`);
}

/** The tier of each object, by id. */
export async function tiers(client: Client): Promise<Record<string, string | undefined>> {
  const list = await client.list();
  return Object.fromEntries(list.map((info) => [info.id, info.tier]).sort());
}
