/**
 * SWIM membership with the Lifeguard refinements, as HashiCorp memberlist
 * runs it: probe one member per interval, ask `indirectChecks` others to
 * probe it when it does not answer, suspect it, declare it dead when the
 * suspicion runs out; piggy-back every change on probes and gossip; a full
 * push/pull with one random member now and then; and stretch its own
 * timeouts when it is the one that is slow.
 *
 * @module
 */
import { ClosedError, NotFoundError, ProtocolError } from "../../core/errors.ts";
import type { ClusterTransport } from "../cluster_transport.ts";
import type { Member, Members } from "../members.ts";
import { Awareness } from "./awareness.ts";
import { BroadcastQueue } from "./broadcast_queue.ts";
import { type GossipConfig, LAN_PROFILE, pushPullScale } from "./config.ts";
import { type MemberEntry, MemberTable } from "./member_table.ts";
import {
  type Envelope,
  parseEnvelope,
  parsePingReply,
  parsePingReq,
  parsePingReqReply,
  parseSync,
  parseSyncReply,
  type PingReqBody,
  type SyncBody,
  type Update,
} from "./messages.ts";
import { ReplayGuard } from "./replay_guard.ts";
import { systemTimers, type TimerHandle, type Timers } from "./timers.ts";

/** Where the membership reports what it does. */
export interface MembershipLog {
  /** Joins, verdicts, refutations. */
  info(message: string): void;
  /** Refused gossip, seeds that do not answer. */
  warn(message: string): void;
  /** Every state change. */
  debug(message: string): void;
}

/** Options of {@link Membership}. */
export interface MembershipOptions {
  /** This member's node id, unique in the cluster. */
  readonly node: string;
  /** How messages reach other members: `HttpClusterTransport` with the cluster token. */
  readonly transport: ClusterTransport;
  /** The profile. Default {@link LAN_PROFILE}. */
  readonly config?: GossipConfig;
  /** The clock and timers. Default: the system's. */
  readonly timers?: Timers;
  /** Where events go. Default: nowhere. */
  readonly log?: MembershipLog;
}

/** Counts since start, for `/metrics`. */
export interface MembershipCounters {
  /** Probes sent. */
  readonly probes: number;
  /** Probes answered by neither the target nor any indirect prober. */
  readonly probeFailures: number;
  /** Indirect probes asked of other members. */
  readonly indirectProbes: number;
  /** Members this member began to suspect (by its probes or by gossip). */
  readonly suspicions: number;
  /** Accusations of this member it refuted. */
  readonly refutations: number;
  /** Members this member saw die. */
  readonly deaths: number;
  /** Incoming gossip messages refused: malformed, replayed or misaddressed. */
  readonly rejected: number;
}

/** Changes carried by one message at most. */
const MAX_PIGGYBACK = 64;
/** Members a leaving member tells directly; gossip takes it further. */
const LEAVE_FANOUT = 8;
/** Nothing quiet: the membership works without a log. */
const quiet: MembershipLog = { info: () => {}, warn: () => {}, debug: () => {} };

/**
 * One member of a SWIM cluster: the {@link Members} view the directory and
 * transfers work from, the loops that keep it true, and the handler of the
 * gossip routes (`ping`, `ping-req`, `gossip`, `sync` under `/v1/cluster/`).
 *
 * @example Two members in one process
 * ```ts ignore
 * import { InProcessNetwork } from "../cluster_transport.ts";
 * import { Membership, TEST_PROFILE } from "./mod.ts";
 * const network = new InProcessNetwork();
 * const a = new Membership({ node: "a", transport: network, config: TEST_PROFILE });
 * const b = new Membership({ node: "b", transport: network, config: TEST_PROFILE });
 * network.register("http://a", (path, body) => a.handle(path, body));
 * network.register("http://b", (path, body) => b.handle(path, body));
 * await a.start("http://a");
 * await b.start("http://b", ["http://a"]);
 * console.log(a.live().length); // 2
 * await b.close(); // b leaves
 * await a.close();
 * ```
 */
export class Membership implements Members, AsyncDisposable {
  /** The profile it runs with. */
  readonly config: GossipConfig;
  readonly #transport: ClusterTransport;
  readonly #timers: Timers;
  readonly #log: MembershipLog;
  readonly #awareness: Awareness;
  readonly #queue: BroadcastQueue;
  readonly #table: MemberTable;
  readonly #guard = new ReplayGuard();
  readonly #abort = new AbortController();
  readonly #tasks = new Set<Promise<unknown>>();
  readonly #handles = new Map<string, TimerHandle>();
  readonly #counters = { probes: 0, probeFailures: 0, indirectProbes: 0, rejected: 0 };
  #order: string[] = [];
  #orderIndex = 0;
  #seeds: readonly string[] = [];
  #started = false;
  #stopped = false;
  #closing: Promise<void> | undefined;

  /**
   * Creates a member; {@link Membership.start} starts it.
   *
   * @param options Node id, transport, profile, clock and log.
   */
  constructor(options: MembershipOptions) {
    this.config = options.config ?? LAN_PROFILE;
    this.#transport = options.transport;
    this.#timers = options.timers ?? systemTimers;
    this.#log = options.log ?? quiet;
    this.#awareness = new Awareness(this.config.awarenessMaxMultiplier);
    this.#queue = new BroadcastQueue(this.config.retransmitMult, () => this.#table.liveCount());
    this.#table = new MemberTable({
      self: { node: options.node, address: "", boot: crypto.randomUUID() },
      config: this.config,
      timers: this.#timers,
      awareness: this.#awareness,
      queue: this.#queue,
      log: (message) => this.#log.info(message),
    });
    this.#table.onChange((member) => {
      this.#log.debug(
        `Member ${member.node} is ${member.state} (incarnation ${member.incarnation})`,
      );
      if (
        member.node !== this.self && member.state === "alive" && !this.#order.includes(member.node)
      ) {
        // A newcomer goes to a random place in the rest of this round, as memberlist does.
        const at = this.#orderIndex +
          Math.floor(Math.random() * (this.#order.length - this.#orderIndex + 1));
        this.#order.splice(at, 0, member.node);
      }
    });
  }

  /** This member's node id. */
  get self(): string {
    return this.#table.self;
  }

  /** This member's base URL, as others reach it. */
  get address(): string {
    return this.#table.me.address;
  }

  /** The local health score (Lifeguard): 0 is healthy; timeouts are stretched by score + 1. */
  get health(): number {
    return this.#awareness.score;
  }

  /** Every member known, this one included, in any state. */
  list(): readonly Member[] {
    return this.#table.list().map(toMember);
  }

  /** Members alive or suspect, this one included while it has not left. */
  live(): readonly Member[] {
    return this.#table.list().filter((entry) =>
      entry.state === "alive" || entry.state === "suspect"
    )
      .map(toMember);
  }

  /** Calls `listener` after each change of a member; returns the unsubscribe. */
  onChange(listener: (member: Member) => void): () => void {
    return this.#table.onChange((entry) => listener(toMember(entry)));
  }

  /** Counts since start. */
  counters(): MembershipCounters {
    return { ...this.#counters, ...this.#table.counters };
  }

  /**
   * Starts the loops with this member reachable at `address`, and joins
   * through `seeds` (base URLs of members already in the cluster; none for a
   * cluster of one). A join that reaches no seed is retried at each push/pull.
   *
   * @returns How many seeds answered.
   * @throws {TypeError} When started twice.
   */
  async start(address: string, seeds: readonly string[] = []): Promise<number> {
    if (this.#started) throw new TypeError("Membership already started");
    this.#started = true;
    this.#table.setAddress(address);
    this.#table.announceSelf();
    this.#seeds = seeds.filter((seed) => seed !== address);
    const joined = this.#seeds.length === 0 ? 0 : await this.join(this.#seeds);
    if (this.#seeds.length > 0 && joined === 0) {
      this.#log.warn(`No seed answered (${this.#seeds.join(", ")}): retrying at each sync`);
    }
    this.#schedule("probe", this.#stagger(this.config.probeInterval), () => this.#probeTick());
    this.#schedule("gossip", this.#stagger(this.config.gossipInterval), () => this.#gossipTick());
    this.#schedule("sync", this.#stagger(this.config.pushPullInterval), () => this.#syncTick());
    return joined;
  }

  /**
   * Joins through `seeds`: a full state exchange with each.
   *
   * @returns How many answered.
   */
  async join(seeds: readonly string[]): Promise<number> {
    const results = await Promise.all(seeds.map(async (seed) => {
      try {
        await this.#pushPull(seed, undefined, true);
        return 1;
      } catch (error) {
        this.#log.warn(`Cannot join through ${seed}: ${(error as Error).message}`);
        return 0;
      }
    }));
    return results.reduce<number>((sum, n) => sum + n, 0);
  }

  /**
   * Leaves the cluster: this member becomes `left`, tells up to 8 members
   * at once and gossips it on. Idempotent.
   */
  async leave(): Promise<void> {
    if (!this.#started || this.#table.leaving) return;
    const update = this.#table.leave();
    const targets = this.#pick(LEAVE_FANOUT, (m) => m.state === "alive" || m.state === "suspect");
    const timeout = Math.min(this.config.requestTimeout, 4 * this.config.probeTimeout);
    await Promise.all(
      targets.map((target) =>
        this.#send(target.address, "gossip", this.#envelope(target.node, [update]), timeout)
          .catch(() => {})
      ),
    );
  }

  /** Leaves, stops every loop and waits for requests under way. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.leave();
      this.#stopped = true;
      for (const handle of this.#handles.values()) this.#timers.clearTimeout(handle);
      this.#handles.clear();
      this.#abort.abort();
      await Promise.allSettled([...this.#tasks]);
      this.#table.close();
    })();
    return this.#closing;
  }

  /** Closes, as {@link Membership.close} does. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Answers a gossip message: `ping`, `ping-req`, `gossip` or `sync`, with
   * the parsed JSON body.
   *
   * @throws {ProtocolError} For a malformed, replayed or misaddressed message (nothing of it applied).
   * @throws {ClosedError} After close.
   * @throws {NotFoundError} For another path.
   */
  async handle(path: string, body: unknown): Promise<unknown> {
    if (this.#stopped) throw new ClosedError(`Member ${this.self} has left the cluster`);
    try {
      switch (path) {
        case "ping": {
          this.#accept(parseEnvelope(body, "ping"));
          return { node: this.self, updates: this.#piggyback() };
        }
        case "ping-req": {
          const message = parsePingReq(body);
          this.#accept(message);
          const ack = await this.#pingFor(message);
          return { ack, updates: this.#piggyback() };
        }
        case "gossip": {
          this.#accept(parseEnvelope(body, "gossip"));
          return {};
        }
        case "sync": {
          const message = parseSync(body);
          this.#accept(message);
          this.#table.merge(message.members);
          return { node: this.self, members: this.#table.records() };
        }
        default:
          throw new NotFoundError(`No cluster route: ${path}`);
      }
    } catch (error) {
      if (error instanceof ProtocolError) {
        this.#counters.rejected++;
        this.#log.warn(`Refused gossip: ${error.message}`);
      }
      throw error;
    }
  }

  /** Prometheus text: members by state, probes, suspicions, refutations, health. */
  metricsText(): string {
    const byState = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const member of this.#table.list()) byState[member.state]++;
    const counters = this.counters();
    const lines = [
      "# HELP packice_cluster_members Members known to this daemon, by state.",
      "# TYPE packice_cluster_members gauge",
      ...Object.entries(byState).map(([state, n]) =>
        `packice_cluster_members{state="${state}"} ${n}`
      ),
    ];
    const metric = (name: string, type: string, help: string, value: number) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    metric("packice_cluster_probes_total", "counter", "Probes sent.", counters.probes);
    metric(
      "packice_cluster_probe_failures_total",
      "counter",
      "Probes no one answered.",
      counters.probeFailures,
    );
    metric(
      "packice_cluster_indirect_probes_total",
      "counter",
      "Indirect probes asked of other members.",
      counters.indirectProbes,
    );
    metric(
      "packice_cluster_suspicions_total",
      "counter",
      "Members this daemon began to suspect.",
      counters.suspicions,
    );
    metric(
      "packice_cluster_refutations_total",
      "counter",
      "Accusations of this daemon it refuted.",
      counters.refutations,
    );
    metric("packice_cluster_deaths_total", "counter", "Members seen to die.", counters.deaths);
    metric(
      "packice_cluster_gossip_rejected_total",
      "counter",
      "Gossip messages refused as malformed, replayed or misaddressed.",
      counters.rejected,
    );
    metric(
      "packice_cluster_health_score",
      "gauge",
      "Local health (Lifeguard awareness): 0 is healthy.",
      this.#awareness.score,
    );
    return `${lines.join("\n")}\n`;
  }

  #accept(message: Envelope): void {
    if (message.to !== undefined && message.to !== this.self) {
      throw new ProtocolError(
        `Misaddressed gossip message: meant for ${message.to}, this is ${this.self}`,
      );
    }
    this.#guard.check(message.from, message.id);
    for (const update of message.updates) this.#table.apply(update);
  }

  #envelope(to: string | undefined, updates: Update[]): Envelope {
    return {
      from: this.self,
      ...(to === undefined ? {} : { to }),
      id: crypto.randomUUID(),
      updates,
    };
  }

  #piggyback(): Update[] {
    return this.#queue.take(MAX_PIGGYBACK);
  }

  #applyAll(updates: readonly Update[]): void {
    for (const update of updates) this.#table.apply(update);
  }

  /** Sends one message, tracked so that close waits for it. */
  #send(address: string, path: string, body: unknown, timeout: number): Promise<unknown> {
    const task = this.#transport.send(address, path, body, timeout, this.#abort.signal);
    this.#tasks.add(task);
    const forget = () => this.#tasks.delete(task);
    task.then(forget, forget);
    return task;
  }

  #schedule(name: string, delay: number, tick: () => Promise<void> | void): void {
    if (this.#stopped) return;
    this.#handles.set(
      name,
      this.#timers.setTimeout(() => {
        this.#handles.delete(name);
        if (this.#stopped) return;
        const task = (async () => {
          try {
            await tick();
          } catch (error) {
            this.#log.warn(`Membership ${name} failed: ${(error as Error)?.message ?? error}`);
          }
        })();
        this.#tasks.add(task);
        task.finally(() => this.#tasks.delete(task));
      }, delay),
    );
  }

  #stagger(interval: number): number {
    return Math.floor(Math.random() * interval);
  }

  /** Up to `k` random other members that `accept` takes. */
  #pick(k: number, accept: (member: MemberEntry) => boolean): MemberEntry[] {
    const candidates = this.#table.list().filter((m) => m.node !== this.self && accept(m));
    shuffle(candidates);
    return candidates.slice(0, k);
  }

  async #probeTick(): Promise<void> {
    const started = this.#timers.now();
    const target = this.#nextTarget();
    if (target !== undefined && !this.#table.leaving) await this.#probe(target);
    const interval = this.#awareness.scale(this.config.probeInterval);
    this.#schedule(
      "probe",
      Math.max(0, started + interval - this.#timers.now()),
      () => this.#probeTick(),
    );
  }

  /** The next member of a shuffled round robin; a new round reaps and reshuffles. */
  #nextTarget(): MemberEntry | undefined {
    for (let looked = 0; looked <= this.#order.length; looked++) {
      if (this.#orderIndex >= this.#order.length) {
        this.#table.reap();
        this.#order = this.#table.list()
          .filter((m) => m.node !== this.self && (m.state === "alive" || m.state === "suspect"))
          .map((m) => m.node);
        shuffle(this.#order);
        this.#orderIndex = 0;
        if (this.#order.length === 0) return undefined;
      }
      const member = this.#table.get(this.#order[this.#orderIndex++]!);
      if (member !== undefined && (member.state === "alive" || member.state === "suspect")) {
        return member;
      }
    }
    return undefined;
  }

  async #probe(target: MemberEntry): Promise<void> {
    this.#counters.probes++;
    const interval = this.#awareness.scale(this.config.probeInterval);
    const started = this.#timers.now();
    const updates = this.#piggyback();
    if (target.state === "suspect") {
      // Tell a suspect at once, so it can refute.
      updates.push({
        kind: "suspect",
        node: target.node,
        incarnation: target.incarnation,
        from: this.self,
      });
    }
    try {
      const reply = parsePingReply(
        await this.#send(
          target.address,
          "ping",
          this.#envelope(target.node, updates),
          this.config.probeTimeout,
        ),
      );
      if (reply.node === target.node) {
        this.#applyAll(reply.updates);
        this.#awareness.apply(-1);
        return;
      }
    } catch {
      // No ack: ask others.
    }
    if (this.#stopped) return;
    const helpers = this.#pick(
      this.config.indirectChecks,
      (m) => m.node !== target.node && m.state === "alive",
    );
    // At least a probe timeout, so an indirect probe always has time to answer.
    const remaining = Math.max(started + interval - this.#timers.now(), this.config.probeTimeout);
    this.#counters.indirectProbes += helpers.length;
    const answers = await Promise.all(helpers.map(async (helper) => {
      const body: PingReqBody = {
        ...this.#envelope(helper.node, this.#piggyback()),
        target: target.node,
        targetAddress: target.address,
      };
      try {
        const reply = parsePingReqReply(
          await this.#send(helper.address, "ping-req", body, remaining),
        );
        this.#applyAll(reply.updates);
        return reply.ack ? "ack" : "nack";
      } catch {
        return "none";
      }
    }));
    if (answers.includes("ack")) {
      this.#awareness.apply(-1);
      return;
    }
    if (this.#stopped || this.#table.leaving) return;
    const elapsed = this.#timers.now() - started;
    if (elapsed > this.config.probeTimeout + remaining + this.config.probeTimeout) {
      // This member stalled (paused, or its event loop blocked) while probing:
      // its own timeouts say nothing about the target.
      this.#awareness.apply(1);
      this.#log.info(`Probe of ${target.node} took ${elapsed} ms: not judging it`);
      return;
    }
    const nacks = answers.filter((answer) => answer === "nack").length;
    this.#awareness.apply(helpers.length > 0 ? helpers.length - nacks : 1);
    this.#counters.probeFailures++;
    const current = this.#table.get(target.node);
    if (current === undefined || current.state === "dead" || current.state === "left") return;
    this.#log.info(`Suspecting ${target.node}: no ack, direct or indirect`);
    this.#table.suspect({
      kind: "suspect",
      node: target.node,
      incarnation: current.incarnation,
      from: this.self,
    });
  }

  /** Probes a target for another member; a nack (false) when it does not answer in time. */
  async #pingFor(message: PingReqBody): Promise<boolean> {
    try {
      const reply = parsePingReply(
        await this.#send(
          message.targetAddress,
          "ping",
          this.#envelope(message.target, this.#piggyback()),
          Math.floor(this.config.probeTimeout * 0.8),
        ),
      );
      this.#applyAll(reply.updates);
      return reply.node === message.target;
    } catch {
      return false;
    }
  }

  #gossipTick(): void {
    if (this.#queue.size > 0) {
      const now = this.#timers.now();
      const targets = this.#pick(
        this.config.gossipNodes,
        (m) =>
          m.state === "alive" || m.state === "suspect" ||
          (m.state === "dead" && now - m.changedAt < this.config.gossipToTheDeadTime),
      );
      for (const target of targets) {
        const updates = this.#piggyback();
        if (updates.length === 0) break;
        this.#send(
          target.address,
          "gossip",
          this.#envelope(target.node, updates),
          this.config.requestTimeout,
        ).catch(() => {});
      }
    }
    this.#schedule("gossip", this.config.gossipInterval, () => this.#gossipTick());
  }

  async #syncTick(): Promise<void> {
    if (this.#table.liveCount() <= 1 && this.#seeds.length > 0 && !this.#table.leaving) {
      if (await this.join(this.#seeds) > 0) this.#log.info("Joined the cluster");
    } else {
      const [peer] = this.#pick(1, (m) => m.state === "alive");
      if (peer !== undefined) {
        await this.#pushPull(peer.address, peer.node, false).catch((error) =>
          this.#log.debug(`Push/pull with ${peer.node} failed: ${error.message}`)
        );
      }
    }
    this.#schedule(
      "sync",
      pushPullScale(this.config.pushPullInterval, this.#table.liveCount()),
      () => this.#syncTick(),
    );
  }

  async #pushPull(address: string, node: string | undefined, join: boolean): Promise<void> {
    const body: SyncBody = {
      ...this.#envelope(node, []),
      join,
      members: this.#table.records(),
    };
    const reply = parseSyncReply(
      await this.#send(address, "sync", body, this.config.requestTimeout),
    );
    if (node !== undefined && reply.node !== node) {
      throw new ProtocolError(`Sync reply from ${reply.node}, expected ${node}`);
    }
    this.#table.merge(reply.members);
  }
}

function toMember({ node, address, state, incarnation, changedAt }: MemberEntry): Member {
  return { node, address, state, incarnation, changedAt };
}

function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}
