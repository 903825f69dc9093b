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
import { ClosedError, NotFoundError, ProtocolError, UnauthorizedError } from "../../core/errors.ts";
import type { Member, Members } from "../members.ts";
import { Awareness } from "./awareness.ts";
import { BroadcastQueue } from "./broadcast_queue.ts";
import { type GossipConfig, LAN_PROFILE, pushPullScale } from "./config.ts";
import { type MemberEntry, MemberTable } from "./member_table.ts";
import { type Envelope, parseEnvelope, parsePingReq, parseSync, type Update } from "./messages.ts";
import type { MembershipCounters, MembershipLog, MembershipOptions } from "./membership_options.ts";
import { membershipMetricsText } from "./metrics_text.ts";
import { Prober, shuffle } from "./prober.ts";
import { gossipRound, pushPull } from "./gossip.ts";
import type { MemberContext } from "./member_context.ts";
import type { ClusterTransport } from "../cluster_transport.ts";
import { ReplayGuard } from "./replay_guard.ts";
import { systemTimers, type TimerHandle, type Timers } from "./timers.ts";

export type { MembershipCounters, MembershipLog, MembershipOptions };

/** Changes carried by one message at most. */
const MAX_PIGGYBACK = 64;
/** Probe intervals {@link Membership.joined} waits for a first seed to answer. */
export const JOIN_GRACE_PROBES = 5;
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
  readonly #context: MemberContext;
  readonly #prober: Prober;
  #rejected = 0;
  #seeds: readonly string[] = [];
  /** Joins tried in a row that no seed answered, while alone: the next waits twice as long. */
  #joinFailures = 0;
  readonly #joined = Promise.withResolvers<void>();
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
      warn: (message) => this.#log.warn(message),
    });
    this.#context = {
      self: options.node,
      config: this.config,
      table: this.#table,
      awareness: this.#awareness,
      timers: this.#timers,
      log: this.#log,
      stopped: () => this.#stopped,
      send: (address, path, body, timeout) => this.#send(address, path, body, timeout),
      envelope: (to, updates) => this.#envelope(to, updates),
      piggyback: () => this.#piggyback(),
      applyAll: (updates) => this.#applyAll(updates),
      pick: (k, accept) => this.#pick(k, accept),
    };
    this.#prober = new Prober(this.#context);
    this.#table.onChange((member) => {
      this.#log.debug(
        `Member ${member.node} is ${member.state} (incarnation ${member.incarnation})`,
      );
      if (member.state === "alive") this.#prober.admit(member.node);
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

  /**
   * Resolves once this member has joined through a seed; at once when it
   * has no seeds, and after {@link JOIN_GRACE_PROBES} probe intervals when
   * no seed has answered yet (it then works as a cluster of one and joins
   * when a seed answers), or when it closes. Until then its view holds only
   * itself: the directory waits for this before it answers from that view,
   * so daemons started together do not each take a cluster of one for the
   * cluster (each claiming the same origin download).
   */
  joined(): Promise<void> {
    return this.#joined.promise;
  }

  /** Counts since start. */
  counters(): MembershipCounters {
    return { ...this.#prober.counters, rejected: this.#rejected, ...this.#table.counters };
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
    const alone = this.#seeds.length > 0 && joined === 0;
    if (alone) {
      this.#log.warn(`No seed answered (${this.#seeds.join(", ")}): retrying`);
      this.#joinFailures = 1;
      this.#schedule(
        "join-grace",
        JOIN_GRACE_PROBES * this.config.probeInterval,
        () => this.#joined.resolve(),
      );
    } else {
      this.#joined.resolve();
    }
    this.#schedule("probe", this.#stagger(this.config.probeInterval), () => this.#probeTick());
    this.#schedule("gossip", this.#stagger(this.config.gossipInterval), () => this.#gossipTick());
    this.#schedule(
      "sync",
      alone ? this.config.probeInterval : this.#stagger(this.config.pushPullInterval),
      () => this.#syncTick(),
    );
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
        await pushPull(this.#context, seed, undefined, true);
        return 1;
      } catch (error) {
        const hint = error instanceof UnauthorizedError
          ? ": every member needs the same token (--token-file, PACKICE_TOKEN)"
          : "";
        this.#log.warn(`Cannot join through ${seed}: ${(error as Error).message}${hint}`);
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
      this.#joined.resolve();
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
          const ack = await this.#prober.pingFor(message);
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
        this.#rejected++;
        this.#log.warn(`Refused gossip: ${error.message}`);
      }
      throw error;
    }
  }

  /** Prometheus text: members by state, probes, suspicions, refutations, health. */
  metricsText(): string {
    return membershipMetricsText(this.#table.list(), this.counters(), this.#awareness.score);
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
    const target = this.#prober.nextTarget();
    if (target !== undefined && !this.#table.leaving) await this.#prober.probe(target);
    const interval = this.#awareness.scale(this.config.probeInterval);
    this.#schedule(
      "probe",
      Math.max(0, started + interval - this.#timers.now()),
      () => this.#probeTick(),
    );
  }

  #gossipTick(): void {
    if (this.#queue.size > 0) gossipRound(this.#context);
    this.#schedule("gossip", this.config.gossipInterval, () => this.#gossipTick());
  }

  async #syncTick(): Promise<void> {
    let next = pushPullScale(this.config.pushPullInterval, this.#table.liveCount());
    if (this.#table.liveCount() <= 1 && this.#seeds.length > 0 && !this.#table.leaving) {
      if (await this.join(this.#seeds) > 0) {
        this.#log.info("Joined the cluster");
        this.#joinFailures = 0;
        this.#joined.resolve();
      } else {
        // Alone with seeds to try: soon at first (daemons started together), then backing off.
        next = Math.min(next, this.config.probeInterval * 2 ** this.#joinFailures++);
      }
    } else {
      const [peer] = this.#pick(1, (m) => m.state === "alive");
      if (peer !== undefined) {
        await pushPull(this.#context, peer.address, peer.node, false).catch((error) =>
          this.#log.debug(`Push/pull with ${peer.node} failed: ${error.message}`)
        );
      }
    }
    this.#schedule("sync", next, () => this.#syncTick());
  }
}

function toMember({ node, address, state, incarnation, changedAt }: MemberEntry): Member {
  return { node, address, state, incarnation, changedAt };
}
