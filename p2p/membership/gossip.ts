/**
 * How a SWIM member spreads what it knows: a round of gossip (its queued
 * changes to a few members, the recently dead included so they hear of it),
 * and a full push/pull of the member table with one member.
 *
 * @module
 */
import { ProtocolError } from "../../core/errors.ts";
import type { MemberContext } from "./member_context.ts";
import { parseSyncReply, type SyncBody } from "./messages.ts";

/** Sends queued changes to `gossipNodes` members, as many as the queue holds. */
export function gossipRound(c: MemberContext): void {
  const now = c.timers.now();
  const targets = c.pick(
    c.config.gossipNodes,
    (m) =>
      m.state === "alive" || m.state === "suspect" ||
      (m.state === "dead" && now - m.changedAt < c.config.gossipToTheDeadTime),
  );
  for (const target of targets) {
    const updates = c.piggyback();
    if (updates.length === 0) break;
    c.send(target.address, "gossip", c.envelope(target.node, updates), c.config.requestTimeout)
      .catch(() => {});
  }
}

/**
 * Exchanges the whole member table with the member at `address` (`node`,
 * when known, must be the one that answers); `join` for a first contact.
 *
 * @throws {ProtocolError} When another node answers, or the reply is malformed.
 */
export async function pushPull(
  c: MemberContext,
  address: string,
  node: string | undefined,
  join: boolean,
): Promise<void> {
  const body: SyncBody = { ...c.envelope(node, []), join, members: c.table.records() };
  const reply = parseSyncReply(await c.send(address, "sync", body, c.config.requestTimeout));
  if (node !== undefined && reply.node !== node) {
    throw new ProtocolError(`Sync reply from ${reply.node}, expected ${node}`);
  }
  c.table.merge(reply.members);
}
