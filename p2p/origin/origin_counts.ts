/**
 * What a daemon counts of its trips to origins, for `/metrics`
 * (`packice_origin_*`) and `client.metrics()`.
 *
 * @module
 */

/** Counters of a read-through. */
export interface OriginCounts {
  /** Requests sent to an origin, resumes and revalidations included. */
  origin_trips_total: number;
  /** Body bytes received from origins. */
  origin_bytes_total: number;
  /** Trips that failed: unreachable, cut off, an unexpected status or length. */
  origin_failures_total: number;
  /** Downloads resumed with `Range` (after a failure, or taken over from a dead downloader). */
  origin_resumes_total: number;
  /** Conditional requests that found the stored response still current (304). */
  origin_not_modified_total: number;
  /** Fetches answered by an object some member already held, with no trip. */
  origin_cluster_hits_total: number;
  /** Fetches that waited on another daemon's download and pulled its pieces. */
  origin_downstream_total: number;
  /** Body bytes of those fetches pulled from other daemons instead of the origin. */
  origin_peer_bytes_total: number;
  /**
   * Pulls from another daemon's piece port that could not reach it, and
   * were asked at its address instead (see `p2p/swarm/piece_ports.ts`).
   */
  origin_piece_port_unreachable_total: number;
}

/** Counters at zero. */
export function originCounts(): OriginCounts {
  return {
    origin_trips_total: 0,
    origin_bytes_total: 0,
    origin_failures_total: 0,
    origin_resumes_total: 0,
    origin_not_modified_total: 0,
    origin_cluster_hits_total: 0,
    origin_downstream_total: 0,
    origin_peer_bytes_total: 0,
    origin_piece_port_unreachable_total: 0,
  };
}
