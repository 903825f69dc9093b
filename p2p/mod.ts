/**
 * The cluster layer: membership and directory contracts, content records,
 * the Redis directory, and the cluster peer that fetches on miss.
 *
 * @module
 */
export type * from "./directory.ts";
export type * from "./members.ts";
export {
  checkRecord,
  contentRecord,
  MAX_PIECE_SIZE,
  MIN_PIECE_SIZE,
  pieceCount,
  pieceSizeFor,
} from "./content.ts";
export { sha256, type WholeHash, wholeHash } from "./sha256.ts";
export { blake3 } from "./blake3.ts";
export {
  newPieceAlgorithm,
  type PieceAlgorithm,
  pieceAlgorithm,
  pieceDigest,
} from "./piece_digest.ts";
export { type Binding, bindRecord, checkBinding } from "./record_binding.ts";
export { RedisDirectory, type RedisDirectoryOptions } from "./directory/redis.ts";
export type { HeldContent, HoldingSource } from "./directory/holding.ts";
export { SourceError, type SourceFault } from "./source_error.ts";
export { type Sources, Transfer, type TransferOptions } from "./transfer.ts";
export { Blocklist } from "./swarm/blocklist.ts";
export { type Holding, type Pick, PiecePicker } from "./swarm/piece_picker.ts";
export { pieceDeadline, type PieceTimeout } from "./swarm/piece_timeout.ts";
export { SourceSpeed } from "./swarm/source_speed.ts";
export { type ClusterCounts, clusterCounts } from "./cluster_metrics.ts";
export type { ClusterLog, ClusterPeerOptions } from "./cluster_options.ts";
export { ClusterPeer } from "./cluster_peer.ts";
export { type Reservation, TransferBudget } from "./swarm/transfer_budget.ts";
export { type TransferLimits, transferLimits } from "./transfer_limits.ts";
export {
  GOSSIP_PROFILES,
  type GossipConfig,
  LAN_PROFILE,
  Membership,
  type MembershipCounters,
  type MembershipLog,
  type MembershipOptions,
  systemTimers,
  TEST_PROFILE,
  type TimerHandle,
  type Timers,
} from "./membership/mod.ts";
export {
  EmbeddedDirectory,
  type EmbeddedDirectoryOptions,
  type EmbeddedDirectoryStats,
} from "./directory/mod.ts";
export {
  type ClusterHandler,
  type ClusterTransport,
  HttpClusterTransport,
  InProcessNetwork,
} from "./cluster_transport.ts";
export {
  type CacheMode,
  type OriginReply,
  type OriginRequest,
  type OriginSource,
} from "../transport/origin_fetch.ts";
export type { AssembleFill, PartialBytes } from "./origin/origin_store.ts";
export {
  ORIGIN_HEADER_PREFIX,
  type OriginCounts,
  originId,
  originRoutes,
  ReadThrough,
  type ReadThroughCluster,
  type ReadThroughOptions,
  responseOf,
} from "./origin/mod.ts";
