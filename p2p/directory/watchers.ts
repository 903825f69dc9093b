/**
 * The watchers one member keeps as an owner of their objects' entries: who
 * wants to hear of changes of which object's holders, and the changes on
 * their way to each. A watcher gets one push in flight at a time, and at
 * most one every {@link PUSH_GAP_MS}; changes that come meanwhile wait, the
 * latest of each holder only, and go together in the next: under a storm of
 * announces, a watcher is woken at that pace, not at each announce.
 *
 * @module
 */
import type { HolderChange } from "../directory.ts";
import { systemTimers, type Timers } from "../membership/timers.ts";

/**
 * The least time from one push to a watcher to the next. Each is an HTTP
 * request the watcher answers; the changes of a broadcast's other receivers
 * (each announcing about every 100 ms, see `swarm/announce_pace.ts`) reach
 * it a few per push instead of one push each (a 7-daemon broadcast: 43%
 * fewer pushes). A change that follows a quiet spell goes at once; one
 * waits 50 ms at most, half what an announce waits for more pieces.
 */
export const PUSH_GAP_MS = 50;

/** A watcher: a member, and where pushes reach it. */
export interface Watcher {
  readonly node: string;
  readonly address: string;
}

/** Changes on their way to one watcher. */
interface Queue {
  address: string;
  /** Objects it watches here. */
  readonly ids: Set<string>;
  /** Changes not yet sent, per object, the latest per holder (`""`: removed). */
  pending: Map<string, Map<string, HolderChange>>;
  sending: boolean;
  /** When the last push to it began (`timers.now()`). */
  sentAt: number;
}

/** Sends changes to a watcher; rejects when it could not be reached. */
export type PushChanges = (
  watcher: Watcher,
  items: Array<{ id: string; change: HolderChange }>,
) => Promise<void>;

/** The most watches kept; more are refused (their watchers look holders up). */
export const MAX_WATCHES = 65_536;

/** Watchers of the entries owned by this member. */
export class Watchers {
  readonly #push: PushChanges;
  readonly #timers: Timers;
  readonly #byId = new Map<string, Set<string>>();
  readonly #queues = new Map<string, Queue>();
  #watches = 0;
  #pushes = 0;
  #closed = false;
  /** The sending loops running. */
  readonly #sending = new Set<Promise<void>>();
  /** Ends the sending loops' waits between pushes, at close. */
  readonly #closing = Promise.withResolvers<void>();

  /**
   * @param push How changes reach a watcher.
   * @param timers The clock of the gaps between pushes. Default: the system's.
   */
  constructor(push: PushChanges, timers: Timers = systemTimers) {
    this.#push = push;
    this.#timers = timers;
  }

  /** Watches kept. */
  get size(): number {
    return this.#watches;
  }

  /** Pushes sent so far (to other members and to this one's own watches). */
  get pushes(): number {
    return this.#pushes;
  }

  /**
   * Records `watcher` as wanting the changes of `id`'s holders.
   *
   * @returns False when this member keeps as many watches as it may.
   */
  add(id: string, watcher: Watcher): boolean {
    let queue = this.#queues.get(watcher.node);
    if (queue?.ids.has(id)) {
      queue.address = watcher.address;
      return true;
    }
    if (this.#watches >= MAX_WATCHES || this.#closed) return false;
    if (queue === undefined) {
      queue = {
        address: watcher.address,
        ids: new Set(),
        pending: new Map(),
        sending: false,
        sentAt: -Infinity,
      };
      this.#queues.set(watcher.node, queue);
    }
    queue.address = watcher.address;
    queue.ids.add(id);
    let nodes = this.#byId.get(id);
    if (nodes === undefined) this.#byId.set(id, nodes = new Set());
    nodes.add(watcher.node);
    this.#watches++;
    return true;
  }

  /** Forgets `node`'s watch of `id`. */
  remove(id: string, node: string): void {
    const queue = this.#queues.get(node);
    if (queue === undefined || !queue.ids.delete(id)) return;
    this.#watches--;
    queue.pending.delete(id);
    const nodes = this.#byId.get(id)!;
    nodes.delete(node);
    if (nodes.size === 0) this.#byId.delete(id);
    if (queue.ids.size === 0 && !queue.sending) this.#queues.delete(node);
  }

  /** Forgets every watch of `node`, a member dead or gone. */
  dropNode(node: string): void {
    for (const id of [...(this.#queues.get(node)?.ids ?? [])]) this.remove(id, node);
  }

  /** Sends `change` of `id`'s holders to each of its watchers. */
  notify(id: string, change: HolderChange): void {
    const nodes = this.#byId.get(id);
    if (nodes === undefined || this.#closed) return;
    const holder = change.kind === "announced"
      ? change.holder.node
      : change.kind === "withdrawn"
      ? change.node
      : "";
    for (const node of nodes) {
      // A watcher knows its own announces.
      if (node === holder) continue;
      const queue = this.#queues.get(node)!;
      let changes = queue.pending.get(id);
      if (changes === undefined) queue.pending.set(id, changes = new Map());
      if (holder === "") changes.clear();
      changes.set(holder, change);
      if (!queue.sending) this.#send(node, queue);
    }
  }

  /** Sends nothing more; settles once no push is on its way. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.resolve();
    await Promise.all(this.#sending);
  }

  /**
   * Sends what waits for `node`, after the changes of this turn join it and
   * {@link PUSH_GAP_MS} passed since the last push; then again while more
   * came meanwhile. A push that fails is not retried: the watcher's own
   * lookups find what it missed.
   */
  #send(node: string, queue: Queue): void {
    queue.sending = true;
    const sending = (async () => {
      // After the changes of this turn joined it.
      await Promise.resolve();
      while (queue.pending.size > 0 && !this.#closed) {
        await this.#gap(queue);
        if (queue.pending.size === 0 || this.#closed) break;
        queue.sentAt = this.#timers.now();
        const items: Array<{ id: string; change: HolderChange }> = [];
        for (const [id, changes] of queue.pending) {
          for (const change of changes.values()) items.push({ id, change });
        }
        queue.pending = new Map();
        this.#pushes++;
        await this.#push({ node, address: queue.address }, items).catch(() => {});
      }
      queue.sending = false;
      if (queue.ids.size === 0 && this.#queues.get(node) === queue) this.#queues.delete(node);
    })();
    this.#sending.add(sending);
    sending.finally(() => this.#sending.delete(sending));
  }

  /** Settles once {@link PUSH_GAP_MS} passed since the last push to `queue`, or at close. */
  async #gap(queue: Queue): Promise<void> {
    const wait = queue.sentAt + PUSH_GAP_MS - this.#timers.now();
    if (wait <= 0) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    const timer = this.#timers.setTimeout(resolve, wait);
    await Promise.race([promise, this.#closing.promise]);
    this.#timers.clearTimeout(timer);
  }
}
