/**
 * The failure detector of a SWIM member: whom to probe next (a shuffled
 * round robin), the probe itself (direct, then through `indirectChecks`
 * others), the verdict it leads to (suspicion, or none when this member
 * stalled), and the probes it runs for others (`ping-req`).
 *
 * @module
 */
import type { MemberContext } from "./member_context.ts";
import type { MemberEntry } from "./member_table.ts";
import { parsePingReply, parsePingReqReply, type PingReqBody } from "./messages.ts";

/** Probes one member at a time and suspects those that answer no one. */
export class Prober {
  readonly #c: MemberContext;
  readonly #counters = { probes: 0, probeFailures: 0, indirectProbes: 0 };
  #order: string[] = [];
  #orderIndex = 0;

  /** A prober for the member whose parts `context` gives. */
  constructor(context: MemberContext) {
    this.#c = context;
  }

  /** Probes sent, probes no one answered, indirect probes asked. */
  get counters(): Readonly<{ probes: number; probeFailures: number; indirectProbes: number }> {
    return this.#counters;
  }

  /** A member newly alive goes to a random place in the rest of this round, as memberlist does. */
  admit(node: string): void {
    if (node === this.#c.self || this.#order.includes(node)) return;
    const at = this.#orderIndex +
      Math.floor(Math.random() * (this.#order.length - this.#orderIndex + 1));
    this.#order.splice(at, 0, node);
  }

  /** The next member of a shuffled round robin; a new round reaps and reshuffles. */
  nextTarget(): MemberEntry | undefined {
    for (let looked = 0; looked <= this.#order.length; looked++) {
      if (this.#orderIndex >= this.#order.length) {
        this.#c.table.reap();
        this.#order = this.#c.table.list()
          .filter((m) => m.node !== this.#c.self && (m.state === "alive" || m.state === "suspect"))
          .map((m) => m.node);
        shuffle(this.#order);
        this.#orderIndex = 0;
        if (this.#order.length === 0) return undefined;
      }
      const member = this.#c.table.get(this.#order[this.#orderIndex++]!);
      if (member !== undefined && (member.state === "alive" || member.state === "suspect")) {
        return member;
      }
    }
    return undefined;
  }

  async probe(target: MemberEntry): Promise<void> {
    this.#counters.probes++;
    const interval = this.#c.awareness.scale(this.#c.config.probeInterval);
    const started = this.#c.timers.now();
    const updates = this.#c.piggyback();
    if (target.state === "suspect") {
      // Tell a suspect at once, so it can refute.
      updates.push({
        kind: "suspect",
        node: target.node,
        incarnation: target.incarnation,
        from: this.#c.self,
      });
    }
    try {
      const reply = parsePingReply(
        await this.#c.send(
          target.address,
          "ping",
          this.#c.envelope(target.node, updates),
          this.#c.config.probeTimeout,
        ),
      );
      if (reply.node === target.node) {
        this.#c.applyAll(reply.updates);
        this.#c.awareness.apply(-1);
        return;
      }
    } catch {
      // No ack: ask others.
    }
    if (this.#c.stopped()) return;
    const helpers = this.#c.pick(
      this.#c.config.indirectChecks,
      (m) => m.node !== target.node && m.state === "alive",
    );
    // At least a probe timeout, so an indirect probe always has time to answer.
    const remaining = Math.max(
      started + interval - this.#c.timers.now(),
      this.#c.config.probeTimeout,
    );
    this.#counters.indirectProbes += helpers.length;
    const answers = await Promise.all(helpers.map(async (helper) => {
      const body: PingReqBody = {
        ...this.#c.envelope(helper.node, this.#c.piggyback()),
        target: target.node,
        targetAddress: target.address,
      };
      try {
        const reply = parsePingReqReply(
          await this.#c.send(helper.address, "ping-req", body, remaining),
        );
        this.#c.applyAll(reply.updates);
        return reply.ack ? "ack" : "nack";
      } catch {
        return "none";
      }
    }));
    if (answers.includes("ack")) {
      this.#c.awareness.apply(-1);
      return;
    }
    if (this.#c.stopped() || this.#c.table.leaving) return;
    const elapsed = this.#c.timers.now() - started;
    if (elapsed > this.#c.config.probeTimeout + remaining + this.#c.config.probeTimeout) {
      // This member stalled (paused, or its event loop blocked) while probing:
      // its own timeouts say nothing about the target.
      this.#c.awareness.apply(1);
      this.#c.log.info(`Probe of ${target.node} took ${elapsed} ms: not judging it`);
      return;
    }
    const nacks = answers.filter((answer) => answer === "nack").length;
    this.#c.awareness.apply(helpers.length > 0 ? helpers.length - nacks : 1);
    this.#counters.probeFailures++;
    const current = this.#c.table.get(target.node);
    if (current === undefined || current.state === "dead" || current.state === "left") return;
    this.#c.log.info(`Suspecting ${target.node}: no ack, direct or indirect`);
    this.#c.table.suspect({
      kind: "suspect",
      node: target.node,
      incarnation: current.incarnation,
      from: this.#c.self,
    });
  }

  /** Probes a target for another member; a nack (false) when it does not answer in time. */
  async pingFor(message: PingReqBody): Promise<boolean> {
    try {
      const reply = parsePingReply(
        await this.#c.send(
          message.targetAddress,
          "ping",
          this.#c.envelope(message.target, this.#c.piggyback()),
          Math.floor(this.#c.config.probeTimeout * 0.8),
        ),
      );
      this.#c.applyAll(reply.updates);
      return reply.node === message.target;
    } catch {
      return false;
    }
  }
}

/** Shuffles `items` in place (Fisher-Yates). */
export function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}
