/**
 * What the loops of a SWIM member (probes, gossip, push/pull) share: its
 * member table, health, profile, and its ways to send.
 *
 * @module
 */
import type { Awareness } from "./awareness.ts";
import type { GossipConfig } from "./config.ts";
import type { MemberEntry, MemberTable } from "./member_table.ts";
import type { Envelope, Update } from "./messages.ts";
import type { MembershipLog } from "./membership_options.ts";
import type { Timers } from "./timers.ts";

/** What the parts of a member work with: its state and its ways to send. */
export interface MemberContext {
  readonly self: string;
  readonly config: GossipConfig;
  readonly table: MemberTable;
  readonly awareness: Awareness;
  readonly timers: Timers;
  readonly log: MembershipLog;
  /** Whether the member has stopped. */
  stopped(): boolean;
  /** Sends one message, tracked so that close waits for it. */
  send(address: string, path: string, body: unknown, timeout: number): Promise<unknown>;
  /** A new message envelope from this member. */
  envelope(to: string | undefined, updates: Update[]): Envelope;
  /** Changes to piggy-back on a message. */
  piggyback(): Update[];
  /** Applies changes a reply carried. */
  applyAll(updates: readonly Update[]): void;
  /** Up to `k` random other members that `accept` takes. */
  pick(k: number, accept: (member: MemberEntry) => boolean): MemberEntry[];
}
