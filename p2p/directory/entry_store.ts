/**
 * The directory entries one member keeps as an owner: holders per object,
 * each entry bound to one content digest, and tombstones of removed objects
 * so a late re-announce of the old content does not bring it back.
 *
 * @module
 */
import type { ContentRecord, DirectoryEntry, Holder } from "../directory.ts";
import type { Timers } from "../membership/timers.ts";
import type { AnnounceStatus } from "./wire.ts";

interface Stored {
  readonly record: ContentRecord;
  readonly holders: Map<string, Holder>;
}

/** The most tombstones kept; the oldest go first. */
const MAX_TOMBSTONES = 100_000;

/** Entries owned by this member. */
export class EntryStore {
  readonly #timers: Timers;
  readonly #tombstoneTtl: number;
  readonly #entries = new Map<string, Stored>();
  readonly #tombstones = new Map<string, { digest: string; until: number }>();

  /**
   * @param timers The clock of tombstones.
   * @param tombstoneTtl Milliseconds a removed object's digest is refused.
   */
  constructor(timers: Timers, tombstoneTtl: number) {
    this.#timers = timers;
    this.#tombstoneTtl = tombstoneTtl;
  }

  /** Entries kept. */
  get size(): number {
    return this.#entries.size;
  }

  /** The ids kept. */
  ids(): string[] {
    return [...this.#entries.keys()];
  }

  /**
   * Adds `holder` to the entry of `record.id`: `conflict` when the entry has
   * another digest, `removed` when this content was removed a moment ago,
   * `missing` when there is no entry and only an `existing` one may take it.
   */
  announce(record: ContentRecord, holder: Holder, existing = false): AnnounceStatus {
    const tombstone = this.#tombstones.get(record.id);
    if (tombstone !== undefined) {
      if (tombstone.until > this.#timers.now() && tombstone.digest === record.digest) {
        return "removed";
      }
      this.#tombstones.delete(record.id);
    }
    const stored = this.#entries.get(record.id);
    if (stored === undefined) {
      if (existing) return "missing";
      this.#entries.set(record.id, { record, holders: new Map([[holder.node, holder]]) });
      return "ok";
    }
    if (stored.record.digest !== record.digest) return "conflict";
    stored.holders.set(holder.node, holder);
    return "ok";
  }

  /**
   * Removes `node` as a holder of `id`; the entry goes with its last holder.
   *
   * @returns Whether it was one.
   */
  withdraw(id: string, node: string): boolean {
    const stored = this.#entries.get(id);
    if (stored === undefined || !stored.holders.delete(node)) return false;
    if (stored.holders.size === 0) this.#entries.delete(id);
    return true;
  }

  /** The entry of `id`. */
  lookup(id: string): DirectoryEntry | undefined {
    const stored = this.#entries.get(id);
    if (stored === undefined) return undefined;
    return { ...stored.record, holders: [...stored.holders.values()] };
  }

  /** Forgets `id` and remembers its digest as removed; returns the entry it had. */
  remove(id: string, digest?: string): DirectoryEntry | undefined {
    const entry = this.lookup(id);
    this.#entries.delete(id);
    const removed = entry?.digest ?? digest;
    if (removed !== undefined) {
      this.#tombstones.delete(id);
      this.#tombstones.set(id, { digest: removed, until: this.#timers.now() + this.#tombstoneTtl });
      if (this.#tombstones.size > MAX_TOMBSTONES) {
        this.#tombstones.delete(this.#tombstones.keys().next().value!);
      }
    }
    return entry;
  }

  /** Removes `node` as a holder everywhere (it died or left); returns the entries it held. */
  dropHolder(node: string): number {
    let dropped = 0;
    for (const [id, stored] of this.#entries) {
      if (!stored.holders.delete(node)) continue;
      dropped++;
      if (stored.holders.size === 0) this.#entries.delete(id);
    }
    return dropped;
  }

  /** Forgets the entry of `id` without a tombstone (it moved to other owners). */
  forget(id: string): void {
    this.#entries.delete(id);
  }
}
