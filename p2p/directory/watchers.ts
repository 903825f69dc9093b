/**
 * The watchers one member keeps as an owner of their objects' entries: who
 * wants to hear of changes of which object's holders, and the changes on
 * their way to each. A watcher gets one push in flight at a time; changes
 * that come meanwhile wait, the latest of each holder only, and go together
 * in the next: under a storm of announces, pushes follow the round trip, not
 * the announces.
 *
 * @module
 */
import type { HolderChange } from "../directory.ts";

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
  readonly #byId = new Map<string, Set<string>>();
  readonly #queues = new Map<string, Queue>();
  #watches = 0;
  #closed = false;
  /** The sending loops running. */
  readonly #sending = new Set<Promise<void>>();

  /** @param push How changes reach a watcher. */
  constructor(push: PushChanges) {
    this.#push = push;
  }

  /** Watches kept. */
  get size(): number {
    return this.#watches;
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
      queue = { address: watcher.address, ids: new Set(), pending: new Map(), sending: false };
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
    await Promise.all(this.#sending);
  }

  /**
   * Sends what waits for `node`, after the changes of this turn join it;
   * then again while more came meanwhile. A push that fails is not retried:
   * the watcher's own lookups find what it missed.
   */
  #send(node: string, queue: Queue): void {
    queue.sending = true;
    const sending = (async () => {
      // After the changes of this turn joined it.
      await Promise.resolve();
      while (queue.pending.size > 0 && !this.#closed) {
        const items: Array<{ id: string; change: HolderChange }> = [];
        for (const [id, changes] of queue.pending) {
          for (const change of changes.values()) items.push({ id, change });
        }
        queue.pending = new Map();
        await this.#push({ node, address: queue.address }, items).catch(() => {});
      }
      queue.sending = false;
      if (queue.ids.size === 0 && this.#queues.get(node) === queue) this.#queues.delete(node);
    })();
    this.#sending.add(sending);
    sending.finally(() => this.#sending.delete(sending));
  }
}
