/**
 * The member state table and SWIM's rules for changing it, as memberlist's
 * `aliveNode`, `suspectNode`, `deadNode` and `mergeState`: a change applies
 * only with an incarnation at least as new as the one known, a member that
 * hears itself suspected or declared dead refutes with a higher incarnation,
 * and suspicion becomes death when its {@link Suspicion} timer runs out.
 * Every change that is news goes to the {@link BroadcastQueue}.
 *
 * @module
 */
import type { Member, MemberState } from "../members.ts";
import type { Awareness } from "./awareness.ts";
import type { BroadcastQueue } from "./broadcast_queue.ts";
import { type GossipConfig, suspicionTimeout } from "./config.ts";
import type { AliveUpdate, DeadUpdate, MemberRecord, SuspectUpdate, Update } from "./messages.ts";
import { Suspicion } from "./suspicion.ts";
import type { Timers } from "./timers.ts";

/** A member as the table keeps it: its contract fields and the id of its process. */
export interface MemberEntry extends Member {
  /** Random per process start: a new one with a new address is a restart, not a conflict. */
  readonly boot: string;
}

interface MutableEntry {
  node: string;
  address: string;
  state: MemberState;
  incarnation: number;
  boot: string;
  changedAt: number;
}

/** Counts the table keeps for `/metrics`. */
export interface TableCounters {
  suspicions: number;
  refutations: number;
  deaths: number;
}

/** What the table needs of its surroundings. */
export interface MemberTableOptions {
  /** This member. */
  readonly self: { readonly node: string; readonly address: string; readonly boot: string };
  /** The profile. */
  readonly config: GossipConfig;
  /** The clock of suspicion timers and state changes. */
  readonly timers: Timers;
  /** The local health score; a refutation raises it. */
  readonly awareness: Awareness;
  /** Where news goes. */
  readonly queue: BroadcastQueue;
  /** Logs conflicts and verdicts. */
  readonly log?: (message: string) => void;
  /** Warns of another live daemon under this member's node id. */
  readonly warn?: (message: string) => void;
}

/** Every member this one knows of, itself included, and the rules that change them. */
export class MemberTable {
  readonly #self: string;
  readonly #config: GossipConfig;
  readonly #timers: Timers;
  readonly #awareness: Awareness;
  readonly #queue: BroadcastQueue;
  readonly #log: (message: string) => void;
  readonly #warn: (message: string) => void;
  /**
   * Other processes heard claiming this member's node id, by boot, with the
   * incarnation last heard: a restart's stale news stops, a live one refutes.
   */
  readonly #claimants = new Map<string, { incarnation: number; warned: boolean }>();
  readonly #entries = new Map<string, MutableEntry>();
  readonly #suspicions = new Map<string, Suspicion>();
  readonly #listeners = new Set<(member: MemberEntry) => void>();
  /** Counts since start. */
  readonly counters: TableCounters = { suspicions: 0, refutations: 0, deaths: 0 };
  #leaving = false;

  /** @param options This member, the profile, the clock, awareness and the queue. */
  constructor(options: MemberTableOptions) {
    this.#self = options.self.node;
    this.#config = options.config;
    this.#timers = options.timers;
    this.#awareness = options.awareness;
    this.#queue = options.queue;
    this.#log = options.log ?? (() => {});
    this.#warn = options.warn ?? this.#log;
    this.#entries.set(this.#self, {
      ...options.self,
      state: "alive",
      incarnation: 1,
      changedAt: options.timers.now(),
    });
  }

  /** This member's node id. */
  get self(): string {
    return this.#self;
  }

  /** This member's entry. */
  get me(): MemberEntry {
    return this.#snapshot(this.#entries.get(this.#self)!);
  }

  /** Whether this member has left. */
  get leaving(): boolean {
    return this.#leaving;
  }

  /** Every member known, in any state. */
  list(): MemberEntry[] {
    return [...this.#entries.values()].map((entry) => this.#snapshot(entry));
  }

  /** One member, if known. */
  get(node: string): MemberEntry | undefined {
    const entry = this.#entries.get(node);
    return entry === undefined ? undefined : this.#snapshot(entry);
  }

  /** Members alive or suspect, this one included while it has not left. */
  liveCount(): number {
    let n = 0;
    for (const entry of this.#entries.values()) {
      if (entry.state === "alive" || entry.state === "suspect") n++;
    }
    return n;
  }

  /** Calls `listener` after each change of a member; returns the unsubscribe. */
  onChange(listener: (member: MemberEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Sets this member's address (known once its server listens). */
  setAddress(address: string): void {
    const me = this.#entries.get(this.#self)!;
    me.address = address;
  }

  /** The alive message of this member, as it announces itself. */
  aliveOfSelf(): AliveUpdate {
    const me = this.#entries.get(this.#self)!;
    return {
      kind: "alive",
      node: me.node,
      address: me.address,
      incarnation: me.incarnation,
      boot: me.boot,
    };
  }

  /** Queues this member's alive message, as on start. */
  announceSelf(): void {
    this.#queue.push(this.aliveOfSelf());
  }

  /** Applies one change received by gossip. */
  apply(update: Update): void {
    switch (update.kind) {
      case "alive":
        return this.alive(update);
      case "suspect":
        return this.suspect(update);
      case "dead":
        return this.dead(update);
    }
  }

  /** A member says it is alive. */
  alive(update: AliveUpdate): void {
    if (this.#leaving && update.node === this.#self) return;
    let entry = this.#entries.get(update.node);
    const isLocal = update.node === this.#self;
    if (entry === undefined) {
      const { node, address, incarnation, boot } = update;
      entry = { node, address, state: "alive", incarnation, boot, changedAt: this.#timers.now() };
      this.#entries.set(update.node, entry);
      this.#queue.push(update);
      this.#emit(entry);
      return;
    }
    if (isLocal) {
      if (update.boot !== entry.boot) this.#claimed(update);
      if (update.incarnation < entry.incarnation) return;
      if (
        update.incarnation === entry.incarnation && update.address === entry.address &&
        update.boot === entry.boot
      ) return;
      this.refute(update.incarnation);
      return;
    }
    const restarted = update.boot !== entry.boot;
    if (update.address !== entry.address) {
      const replaceable = entry.state === "dead" || entry.state === "left" || restarted;
      if (!replaceable) {
        this.#log(
          `Conflicting address for member ${update.node}: known at ${entry.address}, claimed at ${update.address}`,
        );
        return;
      }
    }
    if (update.incarnation <= entry.incarnation) return;
    this.#cancelSuspicion(update.node);
    this.#queue.push(update);
    const changed = entry.state !== "alive" || entry.address !== update.address || restarted;
    entry.incarnation = update.incarnation;
    entry.address = update.address;
    entry.boot = update.boot;
    if (entry.state !== "alive") {
      entry.state = "alive";
      entry.changedAt = this.#timers.now();
    }
    if (changed) this.#emit(entry);
  }

  /** `update.from` suspects a member. */
  suspect(update: SuspectUpdate): void {
    const entry = this.#entries.get(update.node);
    if (entry === undefined || update.incarnation < entry.incarnation) return;
    const running = this.#suspicions.get(update.node);
    if (running !== undefined) {
      if (running.confirm(update.from)) this.#queue.push(update);
      return;
    }
    if (entry.state !== "alive") return;
    if (update.node === this.#self) {
      this.refute(update.incarnation);
      return;
    }
    this.#queue.push(update);
    this.counters.suspicions++;
    entry.incarnation = update.incarnation;
    entry.state = "suspect";
    const changedAt = this.#timers.now();
    entry.changedAt = changedAt;
    const n = this.liveCount();
    const wanted = this.#config.suspicionMult - 2;
    const k = n - 2 < wanted ? 0 : wanted;
    const min = suspicionTimeout(this.#config.suspicionMult, n, this.#config.probeInterval);
    const max = this.#config.suspicionMaxTimeoutMult * min;
    this.#suspicions.set(
      update.node,
      new Suspicion(update.from, k, min, max, this.#timers, (confirmations) => {
        this.#suspicions.delete(update.node);
        const now = this.#entries.get(update.node);
        if (now === undefined || now.state !== "suspect" || now.changedAt !== changedAt) return;
        this.#log(
          `Member ${update.node} is dead: suspicion timed out with ${confirmations} confirmations`,
        );
        this.dead({ kind: "dead", node: now.node, incarnation: now.incarnation, from: this.#self });
      }),
    );
    this.#emit(entry);
  }

  /** `update.from` declares a member dead; from the member itself, it left. */
  dead(update: DeadUpdate): void {
    const entry = this.#entries.get(update.node);
    if (entry === undefined || update.incarnation < entry.incarnation) return;
    this.#cancelSuspicion(update.node);
    const leaving = update.from === update.node;
    if (entry.state === "left" || (entry.state === "dead" && !leaving)) return;
    if (update.node === this.#self && !this.#leaving) {
      this.refute(update.incarnation);
      return;
    }
    this.#queue.push(update);
    entry.incarnation = update.incarnation;
    entry.state = leaving ? "left" : "dead";
    entry.changedAt = this.#timers.now();
    if (!leaving) this.counters.deaths++;
    this.#emit(entry);
  }

  /** Merges another member's full state, as memberlist: a member it thinks dead is only suspected here. */
  merge(records: readonly MemberRecord[]): void {
    for (const record of records) {
      switch (record.state) {
        case "alive":
          this.alive({ kind: "alive", ...record });
          break;
        case "left":
          this.dead({
            kind: "dead",
            node: record.node,
            incarnation: record.incarnation,
            from: record.node,
          });
          break;
        case "dead":
        case "suspect":
          this.suspect({
            kind: "suspect",
            node: record.node,
            incarnation: record.incarnation,
            from: this.#self,
          });
          break;
      }
    }
  }

  /** This member's full state for a push/pull. */
  records(): MemberRecord[] {
    return [...this.#entries.values()].map(({ node, address, state, incarnation, boot }) => ({
      node,
      address,
      state,
      incarnation,
      boot,
    }));
  }

  /**
   * Notes another process claiming this member's node id alive. Once it
   * claims it anew after this one refuted it, it is no stale news of an
   * earlier start (a restart) but a second live daemon: warned of once.
   */
  #claimed(update: AliveUpdate): void {
    const known = this.#claimants.get(update.boot);
    if (known === undefined) {
      this.#claimants.set(update.boot, { incarnation: update.incarnation, warned: false });
      return;
    }
    if (update.incarnation <= known.incarnation) return;
    known.incarnation = update.incarnation;
    if (known.warned) return;
    known.warned = true;
    this.#warn(
      `Another live daemon at ${update.address} uses node id ${this.#self}: give each daemon ` +
        `its own --node (until one stops, the two take the id from each other)`,
    );
  }

  /** Answers an accusation: an incarnation above `accused` and above its own, gossiped as alive. */
  refute(accused: number): void {
    const me = this.#entries.get(this.#self)!;
    me.incarnation = Math.max(me.incarnation + 1, accused + 1);
    this.#awareness.apply(1);
    this.counters.refutations++;
    this.#log(`Refuting an accusation: incarnation ${me.incarnation}`);
    this.#queue.push(this.aliveOfSelf());
  }

  /** Leaves: this member is `left` and says so by gossip. */
  leave(): DeadUpdate {
    this.#leaving = true;
    const me = this.#entries.get(this.#self)!;
    const update: DeadUpdate = {
      kind: "dead",
      node: this.#self,
      incarnation: me.incarnation,
      from: this.#self,
    };
    this.dead(update);
    return update;
  }

  /** Forgets dead and left members whose state is older than `reapTime`. */
  reap(): void {
    const before = this.#timers.now() - this.#config.reapTime;
    for (const [node, entry] of this.#entries) {
      if (node === this.#self) continue;
      if ((entry.state === "dead" || entry.state === "left") && entry.changedAt < before) {
        this.#entries.delete(node);
      }
    }
  }

  /** Stops every suspicion timer. */
  close(): void {
    for (const suspicion of this.#suspicions.values()) suspicion.cancel();
    this.#suspicions.clear();
    this.#listeners.clear();
  }

  #cancelSuspicion(node: string): void {
    this.#suspicions.get(node)?.cancel();
    this.#suspicions.delete(node);
  }

  #snapshot(entry: MutableEntry): MemberEntry {
    return Object.freeze({ ...entry });
  }

  #emit(entry: MutableEntry): void {
    const member = this.#snapshot(entry);
    for (const listener of this.#listeners) {
      try {
        listener(member);
      } catch (error) {
        this.#log(`A membership listener failed: ${(error as Error)?.message ?? error}`);
      }
    }
  }
}
