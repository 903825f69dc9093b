/**
 * What the rest of the peer-to-peer layer needs of membership: the live
 * members, and word when the set changes. `p2p/membership/` implements it
 * with SWIM gossip; a static list implements it for a fixed cluster.
 *
 * @module
 */

/** The states of a member, as SWIM and Consul name them. */
export type MemberState = "alive" | "suspect" | "dead" | "left";

/** One daemon of the cluster as this daemon sees it. */
export interface Member {
  /** Node id, unique in the cluster. */
  readonly node: string;
  /** Its HTTP base URL, such as `http://127.0.0.1:7070`. */
  readonly address: string;
  /** The member's state. */
  readonly state: MemberState;
  /** SWIM incarnation number; a member raises its own to refute suspicion. */
  readonly incarnation: number;
  /** When this daemon last saw the state change, in epoch milliseconds. */
  readonly changedAt: number;
}

/** The view of the cluster the directory and transfers work from. */
export interface Members {
  /** This daemon's own node id. */
  readonly self: string;
  /** Every member known, this daemon included, in any state. */
  list(): readonly Member[];
  /** Members currently alive or suspect (still worth asking), this daemon included. */
  live(): readonly Member[];
  /** Calls `listener` after each change of the member set or of a member's state. */
  onChange(listener: (member: Member) => void): () => void;
  /**
   * Resolves once this daemon has joined the cluster it was told to join, or
   * has waited for that long enough to go on alone; at once when it was told
   * to join none. Absent: the view is complete from the start.
   */
  joined?(): Promise<void>;
}
