/**
 * The object directory (the tracker): who holds which sealed object, with
 * the digests a fetcher verifies bytes against. Two homes implement it: the
 * Redis directory (`--redis`, also on Redis Cluster) and the embedded one
 * kept by the members themselves (rendezvous hashing over live members).
 *
 * @module
 */

/** A daemon that holds an object's bytes, and where it serves them over HTTP. */
export interface Holder {
  /** The holder's node id, unique in the cluster. */
  readonly node: string;
  /** Its HTTP base URL, such as `http://127.0.0.1:7070`. */
  readonly address: string;
  /**
   * The port of its native piece listener (`--http-fast`) on the host of
   * {@link Holder.address}, when it announced one: pieces are asked there
   * (sent with sendfile, off its JS thread), everything else at `address`.
   * Absent (older daemons, no listener): pieces are asked at `address`.
   */
  readonly piecePort?: number;
  /**
   * Pieces it holds while still receiving the object, as a bitfield (bit i of
   * byte i >> 3, most significant first); absent for a holder of the whole
   * sealed object.
   */
  readonly pieces?: Uint8Array;
}

/** What the directory records of one sealed object's content. */
export interface ContentRecord {
  /** The object id. */
  readonly id: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Content digest of the whole object, `sha256:<hex>`. */
  readonly digest: string;
  /** Piece length in bytes; the last piece may be shorter. */
  readonly pieceSize: number;
  /** Digest of each piece in order: `blake3:<hex>`, or `sha256:<hex>` from older daemons. */
  readonly pieceDigests: readonly string[];
  /**
   * `hmac-sha256:<hex>` of the fields above, keyed by the cluster token
   * (see `record_binding.ts`): it ties the content digest to the piece
   * digests. Absent from records sealed by older daemons or without a token.
   */
  readonly binding?: string;
}

/** A directory entry: the content and the holders of exactly that content. */
export interface DirectoryEntry extends ContentRecord {
  /** Holders of this content; never holders of other bytes under the same id. */
  readonly holders: readonly Holder[];
}

/** Options of {@link Directory.announce}. */
export interface AnnounceOptions {
  /**
   * Only join an entry recorded with the same digest; when there is none,
   * refuse with `NotFoundError`. A fetched copy is announced so: an object
   * removed while it was being fetched does not come back.
   */
  readonly existing?: boolean;
  /**
   * Also answer with the holders of the content as recorded just after this
   * announce (this holder included), when the directory can say so in the
   * same call: a transfer that announces its pieces needs no lookup after.
   */
  readonly listing?: boolean;
}

/**
 * A change of one object's holders, pushed by the directory to a watcher:
 * a holder announced (or announced again, with more pieces), a holder
 * withdrawn, or the object removed (no holder left).
 */
export type HolderChange =
  | { readonly kind: "announced"; readonly digest: string; readonly holder: Holder }
  | { readonly kind: "withdrawn"; readonly node: string }
  | { readonly kind: "removed" };

/** A watch of one object's holders (see {@link Directory.watch}); disposing of it ends it. */
export interface HolderWatch extends Disposable {
  /**
   * Whether changes reach the listener now: false until the directory has
   * confirmed the watch, and again once its push connection is lost (until
   * it is back). While false, a watcher looks holders up as it would without.
   */
  readonly live: boolean;
}

/** An object a holder must drop: removed cluster-wide while it held that content. */
export interface Removal {
  /** The object id. */
  readonly id: string;
  /** The content removed; a holder of other content under the id keeps it. */
  readonly digest: string;
}

/**
 * The directory's contract. Holders are kept per content digest: an
 * announce whose digest differs from the entry already recorded under the
 * id is refused with `ConflictError` (code `CONFLICT`) and never merged.
 */
export interface Directory extends AsyncDisposable {
  /** Records `holder` as holding `record`'s content; refuses a conflicting digest. */
  announce(
    record: ContentRecord,
    holder: Holder,
    options?: AnnounceOptions,
  ): Promise<readonly Holder[] | void>;
  /** Removes `node` as a holder of `id`; the entry goes when no holder is left. */
  withdraw(id: string, node: string): Promise<void>;
  /** The entry of `id`, or undefined when no one holds it. */
  lookup(id: string): Promise<DirectoryEntry | undefined>;
  /**
   * Optional: the holders of content `digest` of `id` now, without the
   * record (a transfer's lookups, many a second, need no piece digests);
   * undefined when no entry of that content is recorded. Without it, {@link Directory.lookup}.
   */
  holders?(id: string, digest: string): Promise<readonly Holder[] | undefined>;
  /**
   * Optional: calls `listener` with each change of `id`'s holders from now
   * on, pushed by the directory (no lookup), until the watch is disposed of.
   * Changes may be lost (a connection drops): a watcher still looks holders
   * up now and then. Without it, or while the watch is not
   * {@link HolderWatch.live}, a watcher looks them up often.
   */
  watch?(id: string, listener: (change: HolderChange) => void): HolderWatch;
  /** Forgets `id` cluster-wide (a delete); holders learn of it and drop their copies. */
  remove(id: string): Promise<void>;
  /**
   * Optional: calls `listener` for each removal of content this node holds,
   * so it drops its copy (after its readers release). Returns an unsubscribe.
   */
  onRemove?(listener: (removal: Removal) => void): () => void;
  /**
   * Optional: takes `key` for `claimant` for `ttl` ms when no live claim
   * holds it, or renews the claimant's own (an exclusive CREATE). A claim
   * whose holder stops renewing it expires, and one of a member known dead
   * goes at once.
   *
   * @returns The holder of the claim now: `claimant` when it was granted.
   */
  claim?(key: string, claimant: Holder, ttl: number): Promise<Holder>;
  /** Optional: lets go of `key` when `node` holds it. */
  unclaim?(key: string, node: string): Promise<void>;
  /**
   * Optional: calls `listener` whenever this node's claim of `key` should be
   * renewed at once rather than at its next renewal: the membership changed
   * (the claim's owners may have), or an owner granted it over this node.
   * Returns the unsubscribe. A directory of one store (Redis) has no need.
   */
  onClaimCheck?(key: string, listener: () => void): () => void;
  /** Ends the directory's connections and timers. Idempotent. */
  close(): Promise<void>;
}
