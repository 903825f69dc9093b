import { FileBlobStore } from "../backends/fs/mod.ts";
import { MemoryLeaseStore } from "../backends/memory_lease_store.ts";
import { BasePeer, type BasePeerOptions, type PeerOptions } from "../core/base_peer.ts";
import { validateSize } from "../core/validate.ts";
import { DEFAULT_CAPACITY } from "./memory_peer.ts";

/** Options of {@link FileSystemPeer.open}. */
export interface FileSystemPeerOptions extends PeerOptions {
  /** The data directory; created when missing. */
  readonly dir: string;
  /** The most bytes the peer holds on disk. Default 4 GiB. */
  readonly capacity?: number;
  /** Told of each sealed object found damaged on disk at open, and removed. */
  readonly warn?: (message: string) => void;
}

/**
 * A peer that keeps objects as files in a data directory. Sealed objects
 * survive a restart; unfinished ones are removed when the peer opens. With
 * `mode: "cache"` a full peer deletes its least recently read objects that
 * no lease holds to make room; by default (`"store"`) it refuses new objects.
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
    const blobs = new FileBlobStore({
      dir: options.dir,
      capacity,
      ...(options.warn === undefined ? {} : { warn: options.warn }),
    });
    const peer = new FileSystemPeer({
      blobs,
      leases: options.leases ?? new MemoryLeaseStore(options.clock),
      ...options,
    });
    await peer.recover();
    return peer;
  }
}
