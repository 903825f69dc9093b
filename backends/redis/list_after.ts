/**
 * The namespace's objects in put order, a page at a time, from each shard's
 * index by put order (`{ns:s}:order`, see `keys.ts`) instead of its whole
 * list.
 *
 * Every object has its place in put order in Redis: microseconds of the
 * clock of its shard's Redis when it was put (or one past the shard's last
 * place, so places only grow on a shard), written by the script that
 * records it and removed by the one that removes it. A cursor thus means
 * the same on every node. On one Redis every shard has one clock, so the
 * order is the order puts reached Redis, and a cursor is a place.
 *
 * On a Redis Cluster each shard follows its master's clock, so an object
 * put during a listing, on a master whose clock is behind, may take a place
 * below the last one listed. A cursor there holds a position per shard
 * (`ListCursor.lags`): on each shard, the last place listed or passed
 * over, which every later put on that shard comes after. A page merges the
 * shards' objects after their positions by place, then id: a late put on a
 * slow master comes at the head of the next page. After a page that ends
 * at place `p`, a shard's position is `p` (`p - 1` for an object placed
 * at `p` there and not listed), or, for a shard read to its end, the least
 * of `p` and where the shard ends (see the `page` script): a shard's
 * position trails `p` only by how far its master's clock is behind, so the
 * cursor stays short. A cursor without positions (from an older version)
 * is taken as a place on every shard. A cursor with positions carries a
 * check of the namespace and its shard count ({@link cursorCheck}): one
 * made by a peer of another namespace, whose positions mean nothing here,
 * is refused (one from before there was a check is taken).
 *
 * A page reads, on each shard, only its part of the page: a shard of one
 * answers it in one script call (an index range and the records it names,
 * in one round trip), and shards of many share it out, each asked for a
 * few more than its share, then those that fell short for more. Entries
 * whose record Redis expired (a CREATING object's, with its CREATE lease)
 * are skipped and removed on the way.
 *
 * Records made by a version before the index (or by such a daemon still
 * running) are found when a shard counts fewer places than objects: they
 * are given places then, in the order they were created, after the places
 * given so far (a migration on first use, in batches; the page is read
 * after it).
 *
 * @module
 */
import { InvalidArgumentError } from "../../core/errors.ts";
import {
  byPlace,
  formatCursor,
  isAfter,
  type ListCursor,
  type Placed,
} from "../../core/list_page.ts";
import { decodeObject, type Fields } from "./codec.ts";
import type { Exec } from "./connection.ts";
import { objectKey, objectPrefix, shardOf } from "./keys.ts";
import { SCRIPTS } from "./scripts.ts";
import { chunks, type ShardCalls } from "./shard_calls.ts";

/**
 * The most objects one script call reads: Redis runs one script at a time,
 * and this many keeps other callers waiting a few milliseconds at most. A
 * page of the default size (`DEFAULT_PAGE`, and the one past it that says
 * whether there is more) is one call.
 */
const MAX_READ = 1_024;

/** A shard's part of a page under way. */
interface ShardRun {
  readonly shard: number;
  /** Where its next read starts: a score, inclusive, or `(score`, after it. */
  from: string;
  /** The objects read from it so far that come after the cursor. */
  readonly placed: Placed[];
  /** The place of the last object read, or undefined before any. */
  last: Placed | undefined;
  /** Whether it has nothing more. */
  done: boolean;
  /** How many to ask for next. */
  ask: number;
  /** Once done, on a namespace of shards: the place every later put on it comes after. */
  end: number;
}

/**
 * Reads pages of a namespace in put order.
 */
export class ListAfter {
  readonly #namespace: string;
  readonly #node: string;
  readonly #calls: ShardCalls;
  readonly #now: () => number;
  /** The check of this namespace's cursors. */
  readonly #check: string;

  constructor(namespace: string, node: string, calls: ShardCalls, now: () => number) {
    this.#namespace = namespace;
    this.#node = node;
    this.#calls = calls;
    this.#now = now;
    this.#check = cursorCheck(namespace, calls.count);
  }

  /**
   * The first `count` objects after `after` in put order, each with its
   * place; fewer only at the end of the namespace.
   */
  async read(exec: Exec, after: ListCursor | undefined, count: number): Promise<Placed[]> {
    const shards = this.#calls.count;
    const lags = after?.lags;
    if (lags !== undefined && (shards === 1 || lags.length !== shards)) {
      throw new InvalidArgumentError(
        `Invalid list cursor: it is of ${lags.length} shards, not of the ${shards} of namespace ` +
          `${this.#namespace}; pass the next of one of its pages, got ${formatCursor(after!)}`,
      );
    }
    if (lags !== undefined && after!.check !== undefined && after!.check !== this.#check) {
      throw new InvalidArgumentError(
        `Invalid list cursor: a peer of another namespace than ${this.#namespace} made it; ` +
          `list from the start (no cursor), or pass the next of one of this namespace's pages, ` +
          `got ${formatCursor(after!)}`,
      );
    }
    // The cursor's own object may come back (a read starts at its place): one more.
    const first = Math.min(
      MAX_READ,
      shards === 1 ? count + 1 : Math.min(count + 1, Math.ceil(2 * count / shards) + 8),
    );
    const runs: ShardRun[] = Array.from({ length: shards }, (_, shard) => ({
      shard,
      from: after === undefined
        ? "-inf"
        : lags === undefined
        ? String(after.order)
        : `(${after.order - lags[shard]!}`,
      placed: [],
      last: undefined,
      done: false,
      ask: first,
      end: 0,
    }));
    let wanted = runs;
    for (;;) {
      await Promise.all(wanted.map((run) => this.#readShard(exec, run, after)));
      const all = runs.length === 1 ? runs[0]!.placed : runs.flatMap((run) => run.placed);
      if (runs.length > 1) all.sort(byPlace);
      const open = runs.filter((run) => !run.done);
      if (open.length === 0) return this.#withCursors(all, count, runs);
      // Past the least last place of a shard with more, an object of that shard may come first.
      let frontier = open[0]!.last!;
      for (const run of open) if (byPlace(run.last!, frontier) < 0) frontier = run.last!;
      let safe = 0;
      while (safe < all.length && safe < count && byPlace(all[safe]!, frontier) <= 0) safe++;
      if (safe === count) return this.#withCursors(all, count, runs);
      const bound = all.length >= count ? all[count - 1] : undefined;
      wanted = open.filter((run) => bound === undefined || byPlace(run.last!, bound) < 0);
      // One shard left to read: what is missing; several: twice as many as before.
      const ask = (run: ShardRun) => wanted.length === 1 ? count - safe : run.ask * 2;
      for (const run of wanted) run.ask = Math.min(MAX_READ, count + 1, ask(run));
    }
  }

  /**
   * The first `count` of `all`, the objects read after the cursor in list
   * order; on a namespace of shards, each with the cursor of a page that
   * ends at it (see the module's doc). Each is at or before the last place
   * read of every shard with more, so a shard's objects not read come after
   * it.
   */
  #withCursors(all: Placed[], count: number, runs: readonly ShardRun[]): Placed[] {
    const page = all.length > count ? all.slice(0, count) : all;
    const shards = runs.length;
    if (shards === 1) return page;
    const cursorAt = (at: number): ListCursor => {
      const { order, info } = all[at]!;
      const lags = new Array<number>(shards).fill(0);
      for (const run of runs) if (run.done && run.end < order) lags[run.shard] = order - run.end;
      // Objects of other shards at the same place, after this one: not listed yet.
      for (let j = at + 1; j < all.length && all[j]!.order === order; j++) {
        const shard = shardOf(all[j]!.info.id, shards);
        lags[shard] = Math.max(lags[shard]!, 1);
      }
      return { stage: 0, order, id: info.id, lags, check: this.#check };
    };
    return page.map((one, at) => ({ order: one.order, info: one.info, next: () => cursorAt(at) }));
  }

  /** Reads the next objects of one shard into its run. */
  async #readShard(exec: Exec, run: ShardRun, after: ListCursor | undefined): Promise<void> {
    const { shard } = run;
    const args = [
      String(this.#now()),
      this.#node,
      run.from,
      String(run.ask),
      objectPrefix(this.#namespace, shard),
    ];
    const ends = this.#calls.count === 1 ? "0" : "1";
    const keys = this.#calls.keys[shard]!;
    let reply = await exec(SCRIPTS.page, keys, [...args, "1", ends]) as unknown[];
    if (reply[0] === "UNINDEXED") {
      await this.#reindex(exec, shard);
      reply = await exec(SCRIPTS.page, keys, [...args, "0", ends]) as unknown[];
    }
    const [entries, end] = reply as [[string, string, Fields][], number | string];
    // Read after the shard's position, all are after the cursor; from an old cursor's place, not.
    const from = after?.lags === undefined ? after : undefined;
    for (const [score, id, fields] of entries) {
      const one = { order: Number(score), info: decodeObject(id, fields)! };
      run.last = one;
      if (isAfter(one.order, id, from)) run.placed.push(one);
    }
    if (entries.length < run.ask) {
      run.done = true;
      run.end = Number(end);
    } else run.from = `(${entries[entries.length - 1]![0]}`;
  }

  /**
   * Gives the objects of a shard recorded without a place (by an earlier
   * version) places in put order, in the order they were created; ids the
   * shard lists whose record is gone leave its lists.
   */
  async #reindex(exec: Exec, shard: number): Promise<void> {
    const now = this.#now();
    const ids = await this.#calls.idsOf(exec, shard, now);
    const infos = await this.#calls.infosOf(exec, shard, ids, now);
    const living = infos.filter((info) => info !== undefined);
    living.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const gone = ids.filter((_, i) => infos[i] === undefined);
    const keys = this.#calls.keys[shard]!;
    for (const batch of chunks([...living.map((info) => info.id), ...gone])) {
      await exec(
        SCRIPTS.reindex,
        [...keys, ...batch.map((id) => objectKey(this.#namespace, shard, id))],
        [String(this.#now()), this.#node, ...batch],
      );
    }
  }
}

/**
 * The check of the cursors of `namespace` over `shards` shards: four base-36
 * characters of a hash (FNV-1a, 32 bits) of both, so that a cursor of
 * another namespace is told apart but for one in 36⁴.
 */
function cursorCheck(namespace: string, shards: number): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(`${namespace}\n${shards}`)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return (hash % 36 ** 4).toString(36).padStart(4, "0");
}
