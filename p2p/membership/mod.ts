/**
 * SWIM gossip membership with the Lifeguard refinements (as HashiCorp
 * memberlist): {@link Membership} implements the {@link Members} view of
 * `p2p/members.ts` over the cluster routes of the HTTP server.
 *
 * Each policy is a file of its own: `suspicion.ts` (the timer that shrinks
 * with confirmations), `awareness.ts` (the local health multiplier),
 * `broadcast_queue.ts` (bounded retransmits), `member_table.ts` (the state
 * table and its rules), `messages.ts` (the wire and its parsing),
 * `prober.ts` (probes and verdicts), `gossip.ts` (gossip rounds and
 * push/pull), `metrics_text.ts` (what `/metrics` shows of it).
 *
 * @module
 */
export {
  disseminationBound,
  failureDetectionBounds,
  GOSSIP_PROFILES,
  type GossipConfig,
  LAN_PROFILE,
  pushPullScale,
  retransmitLimit,
  suspicionTimeout,
  TEST_PROFILE,
} from "./config.ts";
export {
  Membership,
  type MembershipCounters,
  type MembershipLog,
  type MembershipOptions,
} from "./membership.ts";
export { systemTimers, type TimerHandle, type Timers } from "./timers.ts";
export type { Member, Members, MemberState } from "../members.ts";
