/**
 * Where a read-through keeps origin objects: any {@link Peer} through its
 * API, and a `ClusterPeer` through its `assemble`, which keeps the object
 * as a copy of this daemon, relays its pieces while they arrive and
 * announces it. Either way the object's size is reserved in the daemon's
 * transfer budget before its blob exists, as a fetch from another daemon does.
 *
 * @module
 */
import { NotFoundError, NotSealedError } from "../../core/errors.ts";
import { Access } from "../../core/lease.ts";
import type { Peer } from "../../core/peer.ts";
import type { Meta } from "../../core/validate.ts";
import type { ContentRecord } from "../directory.ts";
import type { TransferBudget } from "../swarm/transfer_budget.ts";
import type { LentRange } from "../../transport/http/upload_gate.ts";

/** Bytes of an object still arriving that other daemons may be served. */
export interface PartialBytes {
  /** The object's size. */
  readonly size: number;
  /** A copy of `[start, end)` when every piece it touches is verified. */
  read(start: number, end: number): Uint8Array | undefined;
  /** Optional: `[start, end)` lent to one response when every piece it touches is verified. */
  lend?(start: number, end: number): LentRange | undefined;
}

/**
 * Writes and verifies an object's bytes into `view`; `relay` offers them to
 * other daemons meanwhile. Returns the record the object is sealed with.
 */
export type AssembleFill = (
  view: Uint8Array,
  relay: (partial: PartialBytes) => void,
) => Promise<ContentRecord>;

/** A peer that builds objects from bytes it gathers itself (`ClusterPeer`). */
export interface Assembler {
  /** See `ClusterPeer.assemble`. */
  assemble(id: string, size: number, meta: Meta, fill: AssembleFill): Promise<ContentRecord>;
  /** See `ClusterPeer.expect`. */
  expect(id: string, size?: number): Disposable;
}

/** What a read-through needs of its peer. */
export interface OriginStore {
  /** The metadata of object `id` when this peer (or its cluster) holds it, sealed. */
  held(id: string): Promise<Meta | undefined>;
  /**
   * Creates `id` (replacing an older version), fills it through `fill`,
   * seals it; nothing is sealed when `fill` throws. Its size is reserved in
   * the transfer budget first, waiting for room until `signal`.
   *
   * @throws {CapacityExceededError} When the budget has no room for it.
   */
  assemble(
    id: string,
    size: number,
    meta: Meta,
    fill: AssembleFill,
    signal?: AbortSignal,
  ): Promise<ContentRecord>;
  /** Marks `id` as on its way here before its size is known (`stat` says CREATING). */
  expect(id: string): Disposable;
  /** Stores bytes under a fresh id for `ttl` ms (a response not to share); returns the id. */
  keep(bytes: Uint8Array, meta: Meta, ttl: number): Promise<string>;
}

/** The {@link OriginStore} of `peer`, its objects' sizes reserved in `budget`. */
export function peerStore(peer: Peer, budget?: TransferBudget): OriginStore {
  const assembler = typeof (peer as Partial<Assembler>).assemble === "function"
    ? peer as Peer & Assembler
    : undefined;
  const remove = async (id: string) => {
    try {
      const { lease } = await peer.acquire(id, Access.WRITE);
      await peer.discard(lease.id);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
  };
  return {
    held: async (id) => {
      try {
        const { lease, object } = await peer.acquire(id, Access.READ);
        await peer.release(lease.id).catch(() => {});
        return object.meta;
      } catch (error) {
        if (error instanceof NotFoundError || error instanceof NotSealedError) return undefined;
        throw error;
      }
    },
    assemble: async (id, size, meta, fill, signal) => {
      // Sized while it waits for room, before its blob is made.
      using _sized = assembler?.expect(id, size);
      const held = await budget?.reserve(size, `object ${id}`, signal);
      try {
        if (assembler !== undefined) return await assembler.assemble(id, size, meta, fill);
        await remove(id);
        return await assembleIn(peer, id, size, meta, fill);
      } finally {
        held?.release();
      }
    },
    expect: (id) => assembler?.expect(id) ?? { [Symbol.dispose]: () => {} },
    keep: async (bytes, meta, ttl) => {
      const { lease, blobs } = await peer.acquire(undefined, Access.CREATE, {
        size: bytes.length,
        meta,
        ttl,
        objectTtl: ttl,
      });
      try {
        if (bytes.length > 0) await blobs[0]!.write(0, bytes);
        return (await peer.seal(lease.id)).id;
      } catch (error) {
        await peer.discard(lease.id).catch(() => {});
        throw error;
      } finally {
        await peer.release(lease.id).catch(() => {});
      }
    },
  };
}

/** An object built through the Peer API: in its blob's view, else in memory and written. */
async function assembleIn(
  peer: Peer,
  id: string,
  size: number,
  meta: Meta,
  fill: AssembleFill,
): Promise<ContentRecord> {
  const { lease, blobs } = await peer.acquire(id, Access.CREATE, { size, meta });
  let sealed = false;
  try {
    const blob = blobs[0]!;
    const mapped = size === 0 ? undefined : blob.openView();
    const view = mapped ?? new Uint8Array(size);
    const record = await fill(view, () => {});
    if (mapped !== undefined) blob.closeView(mapped);
    else if (size > 0) await blob.write(0, view);
    await peer.seal(lease.id);
    sealed = true;
    await peer.recordDigest?.(lease.id, record.digest);
    return record;
  } finally {
    await (sealed ? peer.release(lease.id) : peer.discard(lease.id)).catch(() => {});
  }
}
