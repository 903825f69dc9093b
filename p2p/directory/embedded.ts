/**
 * The directory kept by the members themselves, for a cluster without Redis:
 * each object's entry lives on the `replicas` live members of highest
 * rendezvous weight for its id (two by default), so no member is a single
 * point of failure and none holds the whole directory. Holders announce to
 * the owners, and announce again to the new owners whenever membership
 * changes; owners drop a dead or departed member's holdings as soon as the
 * membership says so.
 *
 * One idea, the directory protocol between holders and owners: both sides
 * of each call (the asking in the public methods, the answering in
 * `handle`) stay in one file so that a change to a message is made once,
 * hence its length; entries and claims are kept in `entry_store.ts` and
 * `claim_store.ts`.
 *
 * @module
 */
import {
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  ProtocolError,
  StoreUnavailableError,
} from "../../core/errors.ts";
import type { ClusterTransport } from "../cluster_transport.ts";
import type {
  AnnounceOptions,
  ContentRecord,
  Directory,
  DirectoryEntry,
  Holder,
  HolderChange,
  HolderWatch,
  Removal,
} from "../directory.ts";
import type { Member, Members } from "../members.ts";
import { systemTimers, type TimerHandle, type Timers } from "../membership/timers.ts";
import { ClaimStore, type DroppedClaim } from "./claim_store.ts";
import { EntryStore } from "./entry_store.ts";
import { type Watcher, Watchers } from "./watchers.ts";
import { owners, weight } from "./rendezvous.ts";
import {
  type AnnounceItem,
  type AnnounceStatus,
  changeJson,
  entryJson,
  holderJson,
  MAX_BATCH,
  parseAnnounce,
  parseChanged,
  parseClaim,
  parseClaimOf,
  parseEntry,
  parseHolder,
  parseId,
  parseRecord,
  parseStatuses,
  parseUnwatch,
  parseWatch,
  parseWithdraw,
  recordJson,
} from "./wire.ts";
import { object } from "../membership/messages.ts";

/** Milliseconds a lookup waits for the other owners once one has answered with an entry. */
export const LOOKUP_GRACE = 50;

/** Milliseconds before owners that took no watch of an object are asked again. */
const REGISTER_RETRY_MS = 5000;

/**
 * The least number of owners of a claim (fewer only while fewer members are
 * live), whatever `replicas` is: a second grant needs views that differ on
 * every one of them. See {@link EmbeddedDirectory.claim}.
 */
export const CLAIM_OWNERS = 3;

/** Options of {@link EmbeddedDirectory}. */
export interface EmbeddedDirectoryOptions {
  /** The membership: its live members own entries, and its changes move them. */
  readonly members: Members;
  /** How directory messages reach other members: `HttpClusterTransport` with the cluster token. */
  readonly transport: ClusterTransport;
  /** Owners of each entry. Default 2. */
  readonly replicas?: number;
  /** Milliseconds a directory request may take. Default 5000. */
  readonly requestTimeout?: number;
  /**
   * Milliseconds to let membership changes settle before announcing again,
   * and before a claim granted this soon after a change is confirmed. Default 200.
   */
  readonly settle?: number;
  /** Milliseconds a removed object's content is refused if announced again. Default 60 s. */
  readonly tombstoneTtl?: number;
  /** The clock. Default: the system's. */
  readonly timers?: Timers;
  /** Where failures go. Default: nowhere. */
  readonly log?: (message: string) => void;
}

/** Counts for `/metrics` and tests. */
export interface EmbeddedDirectoryStats {
  /** Entries this member keeps as an owner. */
  readonly entries: number;
  /** Objects this member announced as their holder. */
  readonly held: number;
  /** Entries announced again after membership changes. */
  readonly reannounced: number;
  /** Watches of other members' (and its own) this member keeps as an owner. */
  readonly watches: number;
  /** Pushes sent to watchers so far, each one request with the changes merged in it. */
  readonly pushes: number;
}

/** This member's watch of one object's holders, shared by its listeners. */
interface Watched {
  readonly listeners: Set<(change: HolderChange) => void>;
  /** The owner that took the watch, while it is one. */
  owner: string | undefined;
  /** A registration under way. */
  registering: boolean;
  /** When no owner took it last, not asked again before (`performance.now()`). */
  retryAt: number;
}

interface Held {
  readonly record: ContentRecord;
  readonly holder: Holder;
  /** The owners it was last announced to. */
  owners: readonly string[];
  /** The least weight among them; -Infinity while there are fewer than `replicas`. */
  floor: number;
}

/**
 * The embedded directory: {@link Directory} over the members' own memory.
 *
 * @example Wire it to a membership and serve its routes
 * ```ts ignore
 * const directory = new EmbeddedDirectory({ members: membership, transport });
 * // `POST /v1/cluster/directory/<kind>` → directory.handle(kind, body)
 * await directory.announce(record, { node: membership.self, address: membership.address });
 * const entry = await directory.lookup(record.id);
 * ```
 */
export class EmbeddedDirectory implements Directory {
  readonly #members: Members;
  readonly #transport: ClusterTransport;
  readonly #replicas: number;
  readonly #timeout: number;
  readonly #settle: number;
  readonly #removalListeners = new Set<(removal: Removal) => void>();
  readonly #timers: Timers;
  readonly #log: (message: string) => void;
  readonly #store: EntryStore;
  readonly #claims: ClaimStore;
  /** As an owner: who watches which entry. */
  readonly #watchers: Watchers;
  /** As a watcher: the objects watched here, by id. */
  readonly #watched = new Map<string, Watched>();
  readonly #held = new Map<string, Held>();
  readonly #abort = new AbortController();
  readonly #tasks = new Set<Promise<unknown>>();
  readonly #unsubscribe: () => void;
  #pass: TimerHandle | undefined;
  /** Members that became alive, or left the live set, since the last pass. */
  readonly #joined = new Set<string>();
  readonly #departed = new Set<string>();
  /** The last pass could not reach an owner: the next one looks at every object. */
  #retry = false;
  /** Claims this member holds, as their claimant: granted when, and until when the last renewal holds. */
  readonly #mine = new Map<string, { since: number; until: number }>();
  /** Listeners to call when this member's claim of a key should be checked at once. */
  readonly #checks = new Map<string, Set<() => void>>();
  /** Live claims, forgotten here, of members declared dead: they are told to check them when back. */
  readonly #dormant = new Map<string, DroppedClaim[]>();
  /** When another member last joined, came back or went (`timers.now()`). */
  #viewChangedAt = -Infinity;
  /** The live members as the last change left them: a suspect cleared changes no owner. */
  readonly #liveNodes: Set<string>;
  #reannounced = 0;
  #closed = false;

  /**
   * Creates the directory of a member; it follows the membership at once.
   *
   * @param options The membership, transport, replicas and timing.
   */
  constructor(options: EmbeddedDirectoryOptions) {
    this.#members = options.members;
    this.#transport = options.transport;
    this.#replicas = options.replicas ?? 2;
    if (!Number.isInteger(this.#replicas) || this.#replicas < 1) {
      throw new RangeError(`Invalid replicas: ${options.replicas}: expected a positive integer`);
    }
    this.#timeout = options.requestTimeout ?? 5000;
    this.#settle = options.settle ?? 200;
    this.#timers = options.timers ?? systemTimers;
    this.#log = options.log ?? (() => {});
    this.#store = new EntryStore(this.#timers, options.tombstoneTtl ?? 60_000);
    this.#claims = new ClaimStore(this.#timers);
    this.#watchers = new Watchers(
      (watcher, items) => this.#pushTo(watcher, items),
      this.#timers,
    );
    this.#liveNodes = new Set(this.#members.live().map((m) => m.node));
    this.#unsubscribe = this.#members.onChange((member) => this.#changed(member));
  }

  /** Counts of entries kept and objects held. */
  stats(): EmbeddedDirectoryStats {
    return {
      entries: this.#store.size,
      held: this.#held.size,
      reannounced: this.#reannounced,
      watches: this.#watchers.size,
      pushes: this.#watchers.pushes,
    };
  }

  /** Prometheus text: entries kept as an owner, objects held, entries announced again, watches. */
  metricsText(): string {
    const { entries, held, reannounced, watches, pushes } = this.stats();
    return [
      "# HELP packice_cluster_directory_entries Directory entries this daemon keeps as an owner.",
      "# TYPE packice_cluster_directory_entries gauge",
      `packice_cluster_directory_entries ${entries}`,
      "# HELP packice_cluster_directory_held Objects this daemon announced as their holder.",
      "# TYPE packice_cluster_directory_held gauge",
      `packice_cluster_directory_held ${held}`,
      "# HELP packice_cluster_directory_reannounced_total Entries announced again after membership changes.",
      "# TYPE packice_cluster_directory_reannounced_total counter",
      `packice_cluster_directory_reannounced_total ${reannounced}`,
      "# HELP packice_cluster_directory_watches Watches of entries this daemon owns: members pushed their changes.",
      "# TYPE packice_cluster_directory_watches gauge",
      `packice_cluster_directory_watches ${watches}`,
      "# HELP packice_cluster_directory_pushes_total Pushes of holder changes sent to watchers (changes merged in each).",
      "# TYPE packice_cluster_directory_pushes_total counter",
      `packice_cluster_directory_pushes_total ${pushes}`,
      "",
    ].join("\n");
  }

  /** The live members that own the entry of `id`, highest weight first. */
  owners(id: string): Member[] {
    const live = this.#members.live();
    const chosen = owners(id, live.map((m) => m.node), this.#replicas);
    return chosen.map((node) => live.find((m) => m.node === node)!);
  }

  /**
   * Records `holder` as holding `record`'s content, on every owner.
   *
   * @param options `existing`: only join an entry of the same content (a
   *   fetched copy); `listing`: answer with the holders after it.
   * @returns With `listing`, the live holders the owners list after it
   *   (undefined when none answered with them: older owners).
   * @throws {ConflictError} When an owner has other content under the id.
   * @throws {NotFoundError} When the content was just removed cluster-wide, or
   *   with `existing` when no owner has an entry to join.
   * @throws {StoreUnavailableError} When no owner could be reached.
   */
  async announce(
    record: ContentRecord,
    holder: Holder,
    options: AnnounceOptions = {},
  ): Promise<Holder[] | undefined> {
    this.#open();
    const item = { ...checked(record, holder), existing: options.existing === true };
    const targets = this.owners(record.id);
    const listed = new Map<string, Holder>();
    const listing = options.listing === true
      ? (holders: Holder[]) => holders.forEach((h) => listed.set(h.node, h))
      : undefined;
    const statuses = await Promise.all(
      targets.map((owner) => this.#announceTo(owner, [item], listing)),
    );
    const reached = statuses.filter((s) => s !== undefined).map((s) => s![0]!);
    const refused = reached.includes("conflict") || reached.includes("removed");
    if (refused) {
      // Undo where it was taken, so no owner keeps a holder the others refused.
      await Promise.all(
        targets.map((owner, i) =>
          statuses[i]?.[0] === "ok" && this.#withdrawAt(owner, record.id, holder.node)
        ),
      );
    }
    if (reached.includes("conflict")) {
      const current = await this.lookup(record.id).catch(() => undefined);
      throw new ConflictError(
        `Cannot announce object ${record.id} with digest ${record.digest}: the directory holds ${
          current?.digest ?? "other content"
        } under this id`,
      );
    }
    if (reached.includes("removed")) {
      throw new NotFoundError(`Cannot announce object ${record.id}: it was just deleted`);
    }
    if (reached.length > 0 && !reached.includes("ok")) {
      throw new NotFoundError(`Cannot announce object ${record.id}: no entry to join`);
    }
    if (reached.length === 0) {
      throw new StoreUnavailableError(
        `Cannot announce object ${record.id}: none of its owners answered (${
          targets.map((t) => t.node).join(", ")
        })`,
      );
    }
    if (holder.node === this.#members.self) {
      this.#held.set(record.id, {
        record: item.record,
        holder: item.holder,
        ...this.#ownersOf(record.id, targets.map((t) => t.node)),
      });
    }
    if (listing === undefined || listed.size === 0) return undefined;
    const live = new Set(this.#members.live().map((m) => m.node));
    return [...listed.values()].filter((h) => live.has(h.node));
  }

  /** Removes `node` as a holder of `id` on every owner. */
  async withdraw(id: string, node: string): Promise<void> {
    this.#open();
    if (node === this.#members.self) this.#held.delete(id);
    const results = await Promise.all(
      this.owners(id).map((owner) => this.#withdrawAt(owner, id, node)),
    );
    if (!results.includes(true)) {
      throw new StoreUnavailableError(`Cannot withdraw object ${id}: no owner answered`);
    }
  }

  /**
   * The entry of `id` from its owners, with the holders that are live members;
   * undefined when no live member holds it. Once one owner has answered with
   * an entry, the others get {@link LOOKUP_GRACE} ms more, so an owner that
   * hangs (paused, overloaded) does not hold the lookup up.
   *
   * @throws {StoreUnavailableError} When no owner could be reached.
   */
  async lookup(id: string): Promise<DirectoryEntry | undefined> {
    this.#open();
    await this.#members.joined?.();
    const targets = this.owners(id);
    const answers = await this.#answers(targets.map((owner) => this.#lookupAt(owner, id)));
    const reached = answers.filter((a) => a !== null);
    if (targets.length > 0 && reached.length === 0) {
      throw new StoreUnavailableError(`Cannot look up object ${id}: no owner answered`);
    }
    // The first owner's content wins; holders of the same content are merged.
    const first = reached.find((a) => a !== undefined);
    if (first === undefined) return undefined;
    const live = new Set(this.#members.live().map((m) => m.node));
    const holders = new Map<string, Holder>();
    for (const answer of reached) {
      if (answer?.digest !== first.digest) continue;
      for (const holder of answer.holders) {
        if (live.has(holder.node)) holders.set(holder.node, holder);
      }
    }
    if (holders.size === 0) return undefined;
    return { ...recordJson(first), holders: [...holders.values()] };
  }

  /**
   * The holders of content `digest` of `id` that are live members, from its
   * owners as {@link EmbeddedDirectory.lookup} gathers them, without the
   * record: an owner answers with the holders alone (one that does not know
   * the message, with its whole entry).
   *
   * @returns Undefined when no owner records that content with a live holder.
   * @throws {StoreUnavailableError} When no owner could be reached.
   */
  async holders(id: string, digest: string): Promise<Holder[] | undefined> {
    this.#open();
    await this.#members.joined?.();
    const targets = this.owners(id);
    const answers = await this.#answers(targets.map((owner) => this.#holdersAt(owner, id, digest)));
    const reached = answers.filter((a) => a !== null);
    if (targets.length > 0 && reached.length === 0) {
      throw new StoreUnavailableError(`Cannot look up object ${id}: no owner answered`);
    }
    const live = new Set(this.#members.live().map((m) => m.node));
    const holders = new Map<string, Holder>();
    for (const answer of reached) {
      if (answer?.digest !== digest) continue;
      for (const holder of answer.holders) {
        if (live.has(holder.node)) holders.set(holder.node, holder);
      }
    }
    return holders.size === 0 ? undefined : [...holders.values()];
  }

  /**
   * Forgets `id` cluster-wide: its owners drop the entry (and refuse its
   * content for a while), then every holder is told to drop its copy.
   */
  async remove(id: string): Promise<void> {
    this.#open();
    const removed = await Promise.all(
      this.owners(id).map((owner) => this.#call(owner, "remove", { id }).catch(() => undefined)),
    );
    const holders = new Map<string, { holder: Holder; digest: string }>();
    for (const reply of removed) {
      if (reply === undefined) continue;
      const entry = object(reply, "remove reply").entry;
      if (entry === null || entry === undefined) continue;
      const parsed = parseEntry(entry);
      for (const holder of parsed.holders) {
        holders.set(holder.node, { holder, digest: parsed.digest });
      }
    }
    const mine = this.#held.get(id);
    if (mine !== undefined) {
      holders.set(this.#members.self, { holder: mine.holder, digest: mine.record.digest });
    }
    await Promise.all(
      [...holders.values()].map(({ holder, digest }) =>
        this.#dropAt(holder, id, digest).catch((error) =>
          this.#log(`Cannot tell ${holder.node} to drop ${id}: ${error.message}`)
        )
      ),
    );
  }

  /**
   * Takes `key` for `claimant` (or renews its claim): a compare-and-set on
   * each owner of the claim in turn, highest weight first, granted only when
   * every owner grants it. A claim has at least {@link CLAIM_OWNERS} owners
   * (all live members when fewer), more with a larger `replicas`. Any two
   * claimants' owners share one (see below), which grants one of them only,
   * so two claims are never granted at once.
   *
   * An owner is passed over only once the membership counts it dead or gone
   * (then it is no owner at all): one that does not answer while counted
   * alive or suspect (paused, overloaded, just killed) holds the claim up for
   * up to the request timeout, then `claim` throws and its caller tries
   * again; once the membership declares it dead, the next owner decides at
   * once. Owners forget the claims of a member as soon as the membership says
   * it is dead or gone, and every claim expires `ttl` ms after its last
   * renewal.
   *
   * Why the owners overlap: the owner sets of two views of the membership
   * share a member unless the views differ on every owner at once (each
   * counts dead, or does not know, all of the other's owners, or knows as
   * many members that outweigh them). A decider that comes back after it was
   * declared dead, with old claims or none, grants nothing alone: the next
   * owner, which took its place meanwhile, still holds the claim granted then.
   *
   * Claims and entries may have different owner counts because nothing
   * joins them: a claim lives in the owners' claim store only, is never
   * moved when membership changes (its holder renews it with the owners of
   * then every third of its lease, and at once on a change: see
   * {@link EmbeddedDirectory.onClaimCheck}), and is found by asking its own
   * owners, which every member computes alike. A member with a smaller count
   * (an older one: `replicas` claim owners) asks the first of the same
   * owners, so its claims still meet the others'.
   *
   * When the views did differ on every owner (a partition; several joins at
   * once), two claimants can both be granted. Each claim carries when its
   * holder was granted it, and a renewal takes the claim over from a holder
   * granted later (then of a higher node id) at an owner that records one:
   * holders renew at once on every membership change they see, so once the
   * views converge they meet at one owner, and the later one is told to
   * check (and loses) within a few messages, not at its next renewal. A
   * holder an owner forgot because it was declared dead is told to check its
   * claims when it is alive again, and takes them back from the one granted
   * since. A new claim asked while this member's view changed in the last
   * `settle` ms is tentative (it yields to any renewal) until the view has
   * been still for `settle` ms; it is then confirmed with the owners of then,
   * and granted only if they still grant it.
   *
   * @returns The holder of the claim now: `claimant` when granted.
   * @throws {StoreUnavailableError} When an owner counted live did not answer
   *   and was not declared dead within the request timeout.
   */
  async claim(key: string, claimant: Holder, ttl: number): Promise<Holder> {
    this.#open();
    await this.#members.joined?.();
    const self = claimant.node === this.#members.self;
    const mine = self ? this.#mine.get(key) : undefined;
    if (mine !== undefined && this.#timers.now() < mine.until) {
      return (await this.#decide(key, claimant, ttl, mine.since, true)).holder;
    }
    const tentative = self && this.#unsettled();
    const first = await this.#decide(
      key,
      claimant,
      ttl,
      tentative ? undefined : this.#timers.now(),
      false,
    );
    if (first.holder.node !== claimant.node || !(tentative || (self && this.#unsettled()))) {
      return first.holder;
    }
    await this.#settled(Math.min(this.#timeout, ttl / 2));
    // A renewal from now on: it takes over other tentative grants, never a download begun before.
    const confirmed = await this.#decide(key, claimant, ttl, this.#timers.now(), true);
    if (confirmed.holder.node !== claimant.node) {
      // Let go where the first round left it, owners of then included.
      const body = { key, node: claimant.node };
      const owners = new Map([...first.owners, ...confirmed.owners].map((m) => [m.node, m]));
      await Promise.all(
        [...owners.values()].map((o) => this.#call(o, "unclaim", body).catch(() => undefined)),
      );
    }
    return confirmed.holder;
  }

  /**
   * Claims `key` on the owners of now, again while an owner that does not
   * answer is declared dead meanwhile (see {@link EmbeddedDirectory.claim}):
   * granted at `since`, or tentative without; a renewal with `renew`.
   */
  async #decide(
    key: string,
    claimant: Holder,
    ttl: number,
    since: number | undefined,
    renew: boolean,
  ): Promise<{ holder: Holder; owners: Member[] }> {
    const self = claimant.node === this.#members.self;
    const sent = this.#timers.now();
    const body = {
      key,
      holder: holderJson(claimant),
      ttl,
      ...(since === undefined ? {} : { since }),
      ...(renew ? { renew } : {}),
    };
    const deadline = sent + this.#timeout;
    for (;;) {
      const targets = this.#claimOwners(key);
      const outcome = await this.#claimAt(targets, body, claimant);
      if ("holder" in outcome) {
        if (self && outcome.holder.node !== claimant.node) this.#mine.delete(key);
        else if (self && since !== undefined) this.#keep(key, since, sent + ttl);
        return { holder: outcome.holder, owners: targets };
      }
      const live = new Set(this.#members.live().map((m) => m.node));
      const silent = outcome.silent.filter((m) => live.has(m.node));
      // An owner declared dead meanwhile: the owners of now decide, at once.
      if (silent.length < outcome.silent.length) continue;
      if (this.#closed || this.#timers.now() >= deadline) {
        throw new StoreUnavailableError(
          `Cannot claim ${key}: its owner ${
            silent.map((m) => m.node).join(", ")
          } does not answer and is not known dead: try again shortly`,
        );
      }
      await this.#departure(new Set(silent.map((m) => m.node)), deadline);
    }
  }

  /** Records this member's claim of `key`; forgets lapsed ones now and then (a holder lets go). */
  #keep(key: string, since: number, until: number): void {
    this.#mine.set(key, { since, until });
    if (this.#mine.size <= 4096) return;
    const now = this.#timers.now();
    for (const [other, mine] of this.#mine) if (mine.until <= now) this.#mine.delete(other);
  }

  /** The live members that own the claim of `key`, highest weight first. */
  #claimOwners(key: string): Member[] {
    const live = this.#members.live();
    const chosen = owners(key, live.map((m) => m.node), Math.max(this.#replicas, CLAIM_OWNERS));
    return chosen.map((node) => live.find((m) => m.node === node)!);
  }

  /** Whether another member joined, came back or went in the last `settle` ms. */
  #unsettled(): boolean {
    return this.#timers.now() - this.#viewChangedAt < this.#settle;
  }

  /** Resolves once the view has not changed for `settle` ms, after `most` ms, or on close. */
  async #settled(most: number): Promise<void> {
    const end = this.#timers.now() + most;
    for (;;) {
      const wait = Math.min(this.#viewChangedAt + this.#settle, end) - this.#timers.now();
      if (wait <= 0 || this.#closed) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#timers.clearTimeout(timer);
          this.#abort.signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = this.#timers.setTimeout(done, wait);
        this.#abort.signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  /**
   * One round of {@link EmbeddedDirectory.claim} on `targets`: the holder
   * when every owner answered or one refused, else the owners that did not
   * answer (the others granted it).
   */
  async #claimAt(
    targets: readonly Member[],
    body: { key: string; holder: unknown; ttl: number },
    claimant: Holder,
  ): Promise<{ holder: Holder } | { silent: Member[] }> {
    const granted: Member[] = [];
    const silent: Member[] = [];
    // A renewal behind an owner that does not answer reaches the next one
    // within a third of the lease, while its copy there still holds.
    const timeout = Math.min(this.#timeout, Math.max(1, body.ttl / 3));
    // One at a time, in weight order, so that the first owner two claimants
    // share decides between them; asked at once, each could win one owner.
    for (const owner of targets) {
      let holder: Holder;
      try {
        const reply = await this.#call(owner, "claim", body, timeout);
        holder = parseHolder(object(reply, "claim").holder);
      } catch (error) {
        if (!(error instanceof StoreUnavailableError)) throw error;
        this.#log(`Cannot claim ${body.key} at ${owner.node}: ${error.message}`);
        silent.push(owner);
        continue;
      }
      if (holder.node === claimant.node) {
        granted.push(owner);
        continue;
      }
      // Another holds it there: no owner keeps a grant the others refused.
      await Promise.all(
        granted.map((o) =>
          this.#call(o, "unclaim", { key: body.key, node: claimant.node }).catch(() => undefined)
        ),
      );
      return { holder };
    }
    if (targets.length === 0) {
      throw new StoreUnavailableError(`Cannot claim ${body.key}: no member is live`);
    }
    return silent.length === 0 ? { holder: claimant } : { silent };
  }

  /** Resolves once one of `nodes` is dead or gone, at `deadline` (`timers.now()`), or on close. */
  #departure(nodes: ReadonlySet<string>, deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        unsubscribe();
        this.#timers.clearTimeout(timer);
        this.#abort.signal.removeEventListener("abort", done);
        resolve();
      };
      const unsubscribe = this.#members.onChange((member) => {
        if (nodes.has(member.node) && (member.state === "dead" || member.state === "left")) done();
      });
      const timer = this.#timers.setTimeout(done, deadline - this.#timers.now());
      this.#abort.signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Lets go of `key` on every owner when `node` holds it. */
  async unclaim(key: string, node: string): Promise<void> {
    this.#open();
    if (node === this.#members.self) this.#mine.delete(key);
    await Promise.all(
      this.#claimOwners(key).map((owner) =>
        this.#call(owner, "unclaim", { key, node }).catch(() => undefined)
      ),
    );
  }

  /**
   * Calls `listener` whenever this member's claim of `key` should be renewed
   * at once: on every change of the membership it sees (a join, a member
   * back, dead or gone), and when an owner granted the claim over it or
   * learned that it is alive again after it forgot its claims. Returns the
   * unsubscribe.
   */
  onClaimCheck(key: string, listener: () => void): () => void {
    let listeners = this.#checks.get(key);
    if (listeners === undefined) this.#checks.set(key, listeners = new Set());
    const set = listeners;
    set.add(listener);
    return () => {
      if (set.delete(listener) && set.size === 0 && this.#checks.get(key) === set) {
        this.#checks.delete(key);
      }
    };
  }

  /** Calls the claim checks of `key`, or of every key. */
  #check(key?: string): void {
    const sets = key === undefined ? [...this.#checks.values()] : [this.#checks.get(key)];
    for (const listener of sets.flatMap((set) => [...set ?? []])) {
      try {
        listener();
      } catch (error) {
        this.#log(`A claim check failed: ${(error as Error)?.message ?? error}`);
      }
    }
  }

  /** Tells `holder` to check its claim of `key` (best effort: it renews soon anyway). */
  #tell(holder: Holder | Member, key: string): void {
    if (this.#closed) return;
    const task = this.#call(holder, "check", { key, node: holder.node }).catch((error) =>
      this.#log(`Cannot tell ${holder.node} to check its claim of ${key}: ${error.message}`)
    );
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  /**
   * Calls `listener` with each change of `id`'s holders: one owner of the
   * entry (the first that answers, highest weight first) takes the watch and
   * pushes the changes it records (`POST directory/changed`). The watch is
   * live while that owner still owns the entry; once it does not (members
   * came or went), the next look at {@link HolderWatch.live} asks the owners
   * of then. An owner that does not know the message (an older daemon)
   * leaves it not live: its watcher looks holders up.
   */
  watch(id: string, listener: (change: HolderChange) => void): HolderWatch {
    if (this.#closed) return { live: false, [Symbol.dispose]() {} };
    let watched = this.#watched.get(id);
    if (watched === undefined) {
      this.#watched.set(
        id,
        watched = {
          listeners: new Set(),
          owner: undefined,
          registering: false,
          retryAt: -Infinity,
        },
      );
      this.#register(id, watched);
    }
    const state = watched;
    state.listeners.add(listener);
    // deno-lint-ignore no-this-alias
    const directory = this;
    return {
      get live() {
        return directory.#live(id, state);
      },
      [Symbol.dispose]() {
        if (!state.listeners.delete(listener) || state.listeners.size > 0) return;
        if (directory.#watched.get(id) !== state) return;
        directory.#watched.delete(id);
        directory.#unwatch(id, state.owner);
      },
    };
  }

  /**
   * Calls `listener` for each removal of content this member holds, so it
   * drops its copy. Returns the unsubscribe.
   */
  onRemove(listener: (removal: Removal) => void): () => void {
    this.#removalListeners.add(listener);
    return () => this.#removalListeners.delete(listener);
  }

  /** Stops listening to the membership and ends requests under way. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#removalListeners.clear();
    this.#watched.clear();
    this.#checks.clear();
    if (this.#pass !== undefined) this.#timers.clearTimeout(this.#pass);
    this.#abort.abort();
    await Promise.allSettled([...this.#tasks, this.#watchers.close()]);
  }

  /** Closes, as {@link EmbeddedDirectory.close} does. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Answers a directory message from another member: `announce`,
   * `withdraw`, `lookup`, `holders`, `remove`, `drop`, `claim`, `unclaim`,
   * `check` (an owner's word to a claim's holder), `watch`, `unwatch`, or
   * `changed` (an owner's push to a watcher).
   *
   * @throws {ProtocolError} For a malformed message (nothing of it applied).
   */
  handle(path: string, body: unknown): Promise<unknown> {
    try {
      return Promise.resolve(this.#answer(path, body));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #answer(path: string, body: unknown): unknown {
    switch (path) {
      case "announce": {
        const items = parseAnnounce(body);
        const statuses = items.map(({ record, holder, existing }) => {
          const status = this.#store.announce(record, holder, existing);
          if (status === "ok") {
            this.#watchers.notify(record.id, { kind: "announced", digest: record.digest, holder });
          }
          return status;
        });
        // Asked with a listing: the holders of the first item's entry, as it is now.
        const listing = object(body, "announce").listing === true && statuses[0] === "ok"
          ? this.#store.lookup(items[0]!.record.id)?.holders.map(holderJson)
          : undefined;
        return listing === undefined ? { statuses } : { statuses, holders: listing };
      }
      case "withdraw":
        for (const { id, node } of parseWithdraw(body)) {
          if (this.#store.withdraw(id, node)) {
            this.#watchers.notify(id, { kind: "withdrawn", node });
          }
        }
        return {};
      case "watch": {
        const { id, node, address } = parseWatch(body);
        return { watching: this.#watchers.add(id, { node, address }) };
      }
      case "unwatch": {
        const { id, node } = parseUnwatch(body);
        this.#watchers.remove(id, node);
        return {};
      }
      case "changed":
        this.#deliver(parseChanged(body));
        return {};
      case "lookup": {
        const entry = this.#store.lookup(parseId(body, "lookup").id);
        return { entry: entry === undefined ? null : entryJson(entry) };
      }
      case "holders": {
        const { id, digest } = parseId(body, "holders");
        const entry = this.#store.lookup(id);
        return entry === undefined || entry.digest !== digest
          ? { holders: null }
          : { digest: entry.digest, holders: entry.holders.map(holderJson) };
      }
      case "remove": {
        const { id } = parseId(body, "remove");
        const entry = this.#store.remove(id, this.#held.get(id)?.record.digest);
        if (entry !== undefined) this.#watchers.notify(id, { kind: "removed" });
        return { entry: entry === undefined ? null : entryJson(entry) };
      }
      case "claim": {
        // `force` (older members' copy of a grant) is a compare-and-set as well.
        const { key, holder, ttl, since, renew } = parseClaim(body);
        const answer = this.#claims.claim(key, { claimant: holder, ttl, since, renew });
        if (answer.preempted !== undefined) this.#tell(answer.preempted, key);
        return { holder: holderJson(answer.holder) };
      }
      case "unclaim": {
        const { key, node } = parseClaimOf(body, "unclaim");
        this.#claims.unclaim(key, node);
        return {};
      }
      case "check": {
        const { key, node } = parseClaimOf(body, "check");
        if (node === this.#members.self) this.#check(key);
        return {};
      }
      case "drop": {
        const { id, digest } = parseId(body, "drop");
        this.#drop(id, digest);
        return {};
      }
      default:
        throw new NotFoundError(`No directory route: ${path}`);
    }
  }

  #open(): void {
    if (this.#closed) throw new StoreUnavailableError("The cluster directory is closed");
  }

  #drop(id: string, digest: string | undefined): void {
    const mine = this.#held.get(id);
    if (digest !== undefined && mine !== undefined && mine.record.digest !== digest) return;
    this.#held.delete(id);
    if (digest === undefined) return;
    for (const listener of this.#removalListeners) {
      try {
        listener({ id, digest });
      } catch (error) {
        this.#log(`A removal listener failed: ${(error as Error)?.message ?? error}`);
      }
    }
  }

  /** Whether the watch of `id` is live; a watch whose owner is gone is taken elsewhere. */
  #live(id: string, state: Watched): boolean {
    if (this.#watched.get(id) !== state) return false;
    const owner = state.owner;
    if (owner !== undefined && this.owners(id).some((member) => member.node === owner)) return true;
    this.#register(id, state);
    return false;
  }

  /** Asks the owners of `id`, highest weight first, until one takes this member's watch. */
  #register(id: string, state: Watched): void {
    if (state.registering || this.#closed || performance.now() < state.retryAt) return;
    const self = this.#members.self;
    const address = this.#members.list().find((member) => member.node === self)?.address;
    if (address === undefined) return;
    state.registering = true;
    state.owner = undefined;
    const task = (async () => {
      for (const owner of this.owners(id)) {
        try {
          const reply = object(
            await this.#call(owner, "watch", { id, node: self, address }),
            "watch reply",
          );
          if (reply.watching !== true) continue;
        } catch (error) {
          if (!(error instanceof NotFoundError)) {
            this.#log(`Cannot watch ${id} at ${owner.node}: ${(error as Error).message}`);
          }
          continue;
        }
        if (this.#watched.get(id) === state) {
          state.owner = owner.node;
        } else {
          // Disposed of meanwhile.
          this.#unwatch(id, owner.node);
        }
        return;
      }
      // Older owners, or full: asked again after a while, not at each look.
      state.retryAt = performance.now() + REGISTER_RETRY_MS;
    })().finally(() => state.registering = false);
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  /** Tells `owner` (when there is one) that this member watches `id` no more. */
  #unwatch(id: string, owner: string | undefined): void {
    const member = this.#members.live().find((m) => m.node === owner);
    if (member === undefined || this.#closed) return;
    const task = this.#call(member, "unwatch", { id, node: this.#members.self }).catch(() => {});
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  /** Sends changes to a watcher, or hands them to this member's own watches. */
  async #pushTo(watcher: Watcher, items: Array<{ id: string; change: HolderChange }>) {
    if (watcher.node === this.#members.self) return this.#deliver(items);
    await this.#call(watcher, "changed", {
      items: items.map(({ id, change }) => ({ id, change: changeJson(change) })),
    });
  }

  /** Hands pushed changes to the listeners of their objects here. */
  #deliver(items: ReadonlyArray<{ id: string; change: HolderChange }>): void {
    for (const { id, change } of items) {
      for (const listener of this.#watched.get(id)?.listeners ?? []) {
        try {
          listener(change);
        } catch (error) {
          this.#log(`A watch listener failed: ${(error as Error)?.message ?? error}`);
        }
      }
    }
  }

  /** Sends to `owner`, waiting `timeout` ms at most, or answers locally when it is this member. */
  async #call(
    owner: Member | Holder | Watcher,
    path: string,
    body: unknown,
    timeout = this.#timeout,
  ): Promise<unknown> {
    if (owner.node === this.#members.self) return await this.handle(path, body);
    const task = this.#transport.send(
      owner.address,
      `directory/${path}`,
      body,
      timeout,
      this.#abort.signal,
    );
    this.#tasks.add(task);
    const forget = () => this.#tasks.delete(task);
    task.then(forget, forget);
    return await task;
  }

  /**
   * The statuses of a batch at one owner, or undefined when it could not be
   * reached. With `listed`, the owner is asked for the holders of the first
   * item's entry after it, and `listed` hears of them (an older owner does
   * not answer with them).
   */
  async #announceTo(
    owner: Member,
    items: AnnounceItem[],
    listed?: (holders: Holder[]) => void,
  ): Promise<AnnounceStatus[] | undefined> {
    try {
      const reply = await this.#call(owner, "announce", {
        ...(listed === undefined ? {} : { listing: true }),
        items: items.map(({ record, holder, existing }) => ({
          // A join needs only the digest (the entry has the rest): a partial
          // holder announces its pieces many times a second, without the piece digests.
          record: existing === true
            ? { ...recordJson(record), pieceDigests: [] }
            : recordJson(record),
          holder: holderJson(holder),
          ...(existing === true ? { existing } : {}),
        })),
      });
      const statuses = parseStatuses(reply, items.length);
      const holders = (reply as { holders?: unknown }).holders;
      if (listed !== undefined && Array.isArray(holders)) listed(holders.map(parseHolder));
      return statuses;
    } catch (error) {
      this.#log(`Cannot announce to ${owner.node}: ${(error as Error).message}`);
      return undefined;
    }
  }

  async #withdrawAt(owner: Member, id: string, node: string): Promise<boolean> {
    try {
      await this.#call(owner, "withdraw", { items: [{ id, node }] });
      return true;
    } catch {
      return false;
    }
  }

  /** The owner's entry, undefined when it has none, null when it could not be reached. */
  async #lookupAt(owner: Member, id: string): Promise<DirectoryEntry | undefined | null> {
    try {
      const entry = object(await this.#call(owner, "lookup", { id }), "lookup reply").entry;
      return entry === null || entry === undefined ? undefined : parseEntry(entry);
    } catch (error) {
      this.#log(`Cannot look up ${id} at ${owner.node}: ${(error as Error).message}`);
      return null;
    }
  }

  /**
   * The owner's holders of content `digest` of `id`, undefined when it has
   * none, null when it could not be reached. An owner that does not know the
   * message is asked for its whole entry.
   */
  async #holdersAt(
    owner: Member,
    id: string,
    digest: string,
  ): Promise<Pick<DirectoryEntry, "digest" | "holders"> | undefined | null> {
    let reply: Record<string, unknown>;
    try {
      reply = object(await this.#call(owner, "holders", { id, digest }), "holders reply");
    } catch (error) {
      if (!(error instanceof NotFoundError)) {
        this.#log(`Cannot look up ${id} at ${owner.node}: ${(error as Error).message}`);
        return null;
      }
      return await this.#lookupAt(owner, id);
    }
    try {
      if (reply.holders === null) return undefined;
      if (!Array.isArray(reply.holders)) throw new ProtocolError("Malformed holders reply");
      return {
        digest: parseId({ id, digest: reply.digest }, "holders reply").digest!,
        holders: reply.holders.map(parseHolder),
      };
    } catch (error) {
      this.#log(`Cannot look up ${id} at ${owner.node}: ${(error as Error).message}`);
      return null;
    }
  }

  /**
   * The owners' answers, in owner order: all of them, or those in by
   * {@link LOOKUP_GRACE} ms after the first entry (the rest count as unreached).
   */
  async #answers<T extends object>(
    pending: Promise<T | undefined | null>[],
  ): Promise<Array<T | undefined | null>> {
    const answers: Array<T | undefined | null> = pending.map(() => null);
    const { promise: enough, resolve } = Promise.withResolvers<void>();
    let timer: TimerHandle | undefined;
    let left = pending.length;
    if (left === 0) resolve();
    pending.forEach((answer, i) =>
      answer.then((value) => {
        answers[i] = value;
        if (--left === 0) resolve();
        else if (value && timer === undefined) {
          timer = this.#timers.setTimeout(resolve, LOOKUP_GRACE);
        }
      })
    );
    await enough;
    if (timer !== undefined) this.#timers.clearTimeout(timer);
    return [...answers];
  }

  async #dropAt(holder: Holder, id: string, digest: string): Promise<void> {
    if (holder.node === this.#members.self) return this.#drop(id, digest);
    await this.#call(holder, "drop", { id, digest });
  }

  /** The owners of `id` and the least weight among them. */
  #ownersOf(id: string, chosen: readonly string[]): { owners: string[]; floor: number } {
    const floor = chosen.length < this.#replicas
      ? -Infinity
      : Math.min(...chosen.map((node) => weight(node, id)));
    return { owners: [...chosen], floor };
  }

  /**
   * A member changed: owners forget a departed holder, and its claims until it
   * is back; claim holders check their claims at once; holders announce
   * again, once things settle.
   */
  #changed(member: Member): void {
    if (this.#closed || member.node === this.#members.self) return;
    const now = this.#timers.now();
    if (member.state === "dead" || member.state === "left") {
      this.#store.dropHolder(member.node);
      this.#watchers.dropNode(member.node);
      const dropped = this.#claims.dropHolder(member.node);
      for (const [node, claims] of this.#dormant) {
        const left = claims.filter((claim) => claim.until > now);
        if (left.length === 0) this.#dormant.delete(node);
        else this.#dormant.set(node, left);
      }
      if (member.state === "dead" && dropped.length > 0) this.#dormant.set(member.node, dropped);
      this.#joined.delete(member.node);
      this.#departed.add(member.node);
    } else if (member.state === "alive") {
      this.#departed.delete(member.node);
      this.#joined.add(member.node);
      // Declared dead wrongly: its claims, forgotten here, may have gone to another meanwhile.
      for (const claim of this.#dormant.get(member.node) ?? []) {
        if (claim.until > now) this.#tell(member, claim.key);
      }
      this.#dormant.delete(member.node);
    } else {
      return; // A suspect is still live: no owner changes.
    }
    const live = member.state === "alive";
    if (this.#liveNodes.has(member.node) !== live) {
      if (live) this.#liveNodes.add(member.node);
      else this.#liveNodes.delete(member.node);
      this.#viewChangedAt = now;
      this.#check();
    }
    this.#schedulePass(this.#settle);
  }

  #schedulePass(delay: number): void {
    if (this.#pass !== undefined) this.#timers.clearTimeout(this.#pass);
    this.#pass = this.#timers.setTimeout(() => {
      this.#pass = undefined;
      const task = this.#reannounce().catch((error) =>
        this.#log(`Re-announce failed: ${error.message}`)
      );
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }, delay);
  }

  /**
   * Announces each held object whose owners changed to its new owners, and
   * forgets owned entries this member no longer owns (their holders announce
   * them to the new owners). Only objects a change can move are looked at:
   * those a departed member owned, and those a newcomer outweighs an owner of.
   */
  async #reannounce(): Promise<void> {
    const joined = [...this.#joined];
    const departed = new Set(this.#departed);
    this.#joined.clear();
    this.#departed.clear();
    const full = this.#retry;
    this.#retry = false;
    const live = this.#members.live();
    const nodes = live.map((m) => m.node);
    const byNode = new Map(live.map((m) => [m.node, m]));
    const batches = new Map<string, AnnounceItem[]>();
    const moved: Array<[Held, string[]]> = [];
    for (const held of this.#held.values()) {
      const id = held.record.id;
      const touched = full || held.owners.some((node) => departed.has(node)) ||
        joined.some((node) => weight(node, id) > held.floor);
      if (!touched) continue;
      const now = owners(id, nodes, this.#replicas);
      const fresh = now.filter((node) => !held.owners.includes(node));
      if (fresh.length === 0 && now.length === held.owners.length) continue;
      moved.push([held, now]);
      for (const node of fresh) {
        let batch = batches.get(node);
        if (batch === undefined) batches.set(node, batch = []);
        batch.push({ record: held.record, holder: held.holder });
      }
    }
    const self = this.#members.self;
    for (const id of this.#store.ids()) {
      const mine = weight(self, id);
      if (!joined.some((node) => weight(node, id) > mine)) continue;
      if (!owners(id, nodes, this.#replicas).includes(self)) this.#store.forget(id);
    }
    const failed = new Set<string>();
    await Promise.all([...batches].map(async ([node, items]) => {
      for (let at = 0; at < items.length; at += MAX_BATCH) {
        const batch = items.slice(at, at + MAX_BATCH);
        const statuses = await this.#announceTo(byNode.get(node)!, batch);
        if (statuses === undefined) {
          failed.add(node);
          return;
        }
        this.#reannounced += batch.length;
        statuses.forEach((status, i) => {
          if (status === "removed") {
            const { id, digest } = batch[i]!.record;
            this.#drop(id, digest);
          }
        });
      }
    }));
    for (const [held, now] of moved) {
      // An owner that did not answer is tried again by the next pass.
      Object.assign(held, this.#ownersOf(held.record.id, now.filter((node) => !failed.has(node))));
    }
    if (failed.size > 0 && !this.#closed) {
      this.#retry = true;
      this.#schedulePass(Math.max(1000, this.#settle));
    }
  }
}

/** Records checked already, to their checked copies: a partial holder announces one many times. */
const checkedRecords = new WeakMap<ContentRecord, ContentRecord>();

/** Checks an announce from this process's caller, as a receiving owner would. */
function checked(record: ContentRecord, holder: Holder): AnnounceItem {
  try {
    let copy = checkedRecords.get(record);
    if (copy === undefined) checkedRecords.set(record, copy = parseRecord(recordJson(record)));
    return { record: copy, holder: parseHolder(holderJson(holder)) };
  } catch (error) {
    throw new InvalidArgumentError(`Invalid announce: ${(error as Error).message}`);
  }
}
