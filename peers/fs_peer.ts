import type { Blob } from "../core/blob.ts";
import { FileBlobStore } from "../backends/fs/mod.ts";
import { MemoryLeaseStore } from "../backends/memory_lease_store.ts";
import { BasePeer, type BasePeerOptions } from "../core/base_peer.ts";
import type { Clock } from "../core/clock.ts";
import type { LeaseStore } from "../core/lease_store.ts";
import { validateSize } from "../core/validate.ts";
import { DEFAULT_CAPACITY } from "./memory_peer.ts";

/** Options of {@link FileSystemPeer.open}. */
export interface FileSystemPeerOptions {
  /** The data directory; created when missing. */
  readonly dir: string;
  /** The most bytes the peer holds on disk. Default 4 GiB. */
  readonly capacity?: number;
  /** Where leases live. Default: a {@link MemoryLeaseStore} on the peer's clock. */
  readonly leases?: LeaseStore;
  /** The clock that decides expiry. */
  readonly clock?: Clock;
  /** How often expired leases are swept, in milliseconds; 0 only on demand. */
  readonly sweepInterval?: number;
  /** This node's id in a shared lease store. */
  readonly node?: string;
  /** Computes each object's digest after seal, for a shared directory; see `BasePeerOptions.digest`. */
  readonly digest?: (blobs: readonly Blob[]) => Promise<string>;
}

/**
 * A peer that keeps objects as files in a data directory. Sealed objects
 * survive a restart; unfinished ones are removed when the peer opens.
 *
 * @example Objects outlive the peer
 * ```ts ignore
 * import { connect, FileSystemPeer } from "@packice/packice";
 * const dir = await Deno.makeTempDir();
 * await using peer = await FileSystemPeer.open({ dir });
 * await using client = await connect(peer);
 * await client.put(new Uint8Array([1, 2, 3]), { id: "kept" });
 * ```
 */
export class FileSystemPeer extends BasePeer {
  private constructor(options: BasePeerOptions) {
    super(options);
  }

  /**
   * Opens a peer on a data directory and finds its sealed objects again.
   *
   * @param options The directory, capacity, lease store and clock.
   * @returns The peer, with recovered objects in lookups.
   */
  static async open(options: FileSystemPeerOptions): Promise<FileSystemPeer> {
    const capacity = validateSize(options.capacity ?? DEFAULT_CAPACITY, "capacity");
    const blobs = new FileBlobStore({ dir: options.dir, capacity });
    const peer = new FileSystemPeer({
      blobs,
      leases: options.leases ?? new MemoryLeaseStore(options.clock),
      ...options,
    });
    try {
      await peer.recover();
    } catch (error) {
      await peer.close();
      throw error;
    }
    return peer;
  }
}
