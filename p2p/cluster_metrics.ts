/** What a cluster peer counts for `/metrics`, by name without the `packice_` prefix. */
export interface ClusterCounts {
  /** Reads answered by a copy on this host. */
  cluster_local_hits_total: number;
  /** Objects fetched from other daemons. */
  cluster_fetches_total: number;
  /** Bytes received from other daemons. */
  cluster_fetch_bytes_total: number;
  /** Seconds spent in fetches that succeeded. */
  cluster_fetch_seconds_total: number;
  /** Reads that no daemon could answer. */
  cluster_misses_total: number;
  /** Pieces or whole objects whose bytes did not match their digest. */
  cluster_verify_failures_total: number;
  /** Holders given up mid-fetch: unreachable, wrong status or length, slow, bad bytes. */
  cluster_source_failures_total: number;
  /** Sources put on the blocklist: bad bytes, a timeout, far slower than their own mean. */
  cluster_blocked_total: number;
  /** Holders withdrawn from the directory because they could not be reached. */
  cluster_withdrawn_total: number;
  /** Copies dropped because their object was removed or replaced. */
  cluster_dropped_total: number;
  /** Holders' piece ports found unreachable: their pieces asked at their address for a while. */
  cluster_piece_port_unreachable_total: number;
  /** Announces of the pieces of transfers under way, as a partial holder. */
  cluster_piece_announces_total: number;
}

/** Every counter at zero. */
export function clusterCounts(): ClusterCounts {
  return {
    cluster_local_hits_total: 0,
    cluster_fetches_total: 0,
    cluster_fetch_bytes_total: 0,
    cluster_fetch_seconds_total: 0,
    cluster_misses_total: 0,
    cluster_verify_failures_total: 0,
    cluster_source_failures_total: 0,
    cluster_blocked_total: 0,
    cluster_withdrawn_total: 0,
    cluster_dropped_total: 0,
    cluster_piece_port_unreachable_total: 0,
    cluster_piece_announces_total: 0,
  };
}
