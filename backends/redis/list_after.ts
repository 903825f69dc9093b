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
 * put during a listing, on a master whose clock is behind, could take a
 * place below the last one listed. A page thus brings every shard it read
 * to its end up to where the page ends before it gives a cursor: the
 * place every later put on such a shard comes after is raised to the
 * highest place the page met (its last one or past it), and what was
 * placed up to the page's last place meanwhile is read into the page (the
 * `catch_up` script; one more call only for shards whose end is below the
 * page's last place, on a page that met a put or a clock behind; raised
 * that far, they need none on the pages after until a put passes it). So every
 * later put on any shard comes after the cursor, which is a place and an
 * id whatever the number of shards: `<order>-<check>:<id>`, the same
 * length for 1 or 16,384 shards. A late put on a slow master then takes a
 * place past the page's (one past the last, as for a clock gone back): the
 * next page lists it.
 *
 * A cursor carries a check ({@link storeCheck}) of the namespace, its
 * shard count and the epochs of its shards (the Redis time each shard's
 * state began, which every page reads in the same call as its objects): a
 * cursor made on another namespace, on another Redis or Redis Cluster
 * with a namespace of the same name, or before a shard lost its state, is
 * refused with INVALID_ARGUMENT saying to list from the start, instead of
 * listing from places that mean nothing there. It costs no call of its
 * own.
 *
 * Cursors of the versions before are taken: a place and id without a
 * check, as every cursor is now read; a position per shard
 * (`ListCursor.lags`, from a cluster), each shard read after its own,
 * with a check of the namespace and shard count ({@link namespaceCheck})
 * when it has one. Those can tell no store from another.
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
import { objectKey, objectPrefix } from "./keys.ts";
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
  /** The epoch of each shard as the last page read it. */
  readonly #epochs: string[];
  /** The check of this store's cursors, of those epochs; empty when one changed since. */
  #check = "";

  constructor(namespace: string, node: string, calls: ShardCalls, now: () => number) {
    this.#namespace = namespace;
    this.#node = node;
    this.#calls = calls;
    this.#now = now;
    this.#epochs = new Array<string>(calls.count).fill("");
  }

  /**
   * The first `count` objects after `after` in put order, each with its
   * place and the cursor of a page that ends at it; fewer only at the end
   * of the namespace.
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
      // The first reads were of every shard: their epochs are known.
      if (wanted === runs) this.#checkCursor(after);
      const all = runs.length === 1 ? runs[0]!.placed : runs.flatMap((run) => run.placed);
      if (runs.length > 1) all.sort(byPlace);
      const open = runs.filter((run) => !run.done);
      if (open.length === 0) return await this.#page(exec, all, count, runs, after);
      // Past the least last place of a shard with more, an object of that shard may come first.
      let frontier = open[0]!.last!;
      for (const run of open) if (byPlace(run.last!, frontier) < 0) frontier = run.last!;
      let safe = 0;
      while (safe < all.length && safe < count && byPlace(all[safe]!, frontier) <= 0) safe++;
      if (safe === count) return await this.#page(exec, all, count, runs, after);
      const bound = all.length >= count ? all[count - 1] : undefined;
      wanted = open.filter((run) => bound === undefined || byPlace(run.last!, bound) < 0);
      // One shard left to read: what is missing; several: twice as many as before.
      const ask = (run: ShardRun) => wanted.length === 1 ? count - safe : run.ask * 2;
      for (const run of wanted) run.ask = Math.min(MAX_READ, count + 1, ask(run));
    }
  }

  /** Refuses a cursor another store made, by its check; one without a check is taken. */
  #checkCursor(after: ListCursor | undefined): void {
    if (after?.check === undefined) return;
    const shards = this.#calls.count;
    const ours = after.lags === undefined
      ? this.#storeCheck()
      : namespaceCheck(this.#namespace, shards);
    if (after.check === ours) return;
    throw new InvalidArgumentError(
      `Invalid list cursor: it was made on another store than namespace ${this.#namespace} of ` +
        `this Redis (on another namespace or Redis, or before a shard of it lost its state); ` +
        `list from the start (no cursor), or ` +
        `pass the next of one of this namespace's pages, got ${formatCursor(after)}`,
    );
  }

  /** The check of this store's cursors, of the shards' epochs as the last page read them. */
  #storeCheck(): string {
    if (this.#check === "") this.#check = storeCheck(this.#namespace, this.#epochs);
    return this.#check;
  }

  /**
   * The first `count` of `all`, the objects read after the cursor in list
   * order, each with the cursor of a page that ends at it. Each is at or
   * before the last place read of every shard with more, so a shard's
   * objects not read come after it; on a namespace of shards, every shard
   * read to an end below the page's is first brought up to it (see the
   * module's doc).
   */
  async #page(
    exec: Exec,
    all: Placed[],
    count: number,
    runs: readonly ShardRun[],
    after: ListCursor | undefined,
  ): Promise<Placed[]> {
    let page = all.length > count ? all.slice(0, count) : all;
    const last = page.at(-1)?.order;
    const behind = runs.length === 1 || last === undefined
      ? []
      : runs.filter((run) => run.done && run.end < last);
    if (behind.length > 0) {
      // Raised to the highest place the page met, the shards behind need no call on the pages
      // after while nothing is put past it.
      let high = last!;
      for (const run of runs) high = Math.max(high, run.done ? run.end : run.last!.order);
      await Promise.all(behind.map((run) => this.#catchUp(exec, run, last!, high, after)));
      const caught = runs.flatMap((run) => run.placed).sort(byPlace);
      page = caught.length > count ? caught.slice(0, count) : caught;
    }
    const check = this.#storeCheck();
    return page.map(({ order, info }) => ({
      order,
      info,
      next: (): ListCursor => ({ stage: 0, order, id: info.id, check }),
    }));
  }

  /**
   * Raises the place every later put on a shard read to its end comes
   * after to `raise`, and reads what was placed up to `to` since.
   */
  async #catchUp(
    exec: Exec,
    run: ShardRun,
    to: number,
    raise: number,
    after: ListCursor | undefined,
  ): Promise<void> {
    const keys = this.#calls.keys[run.shard]!;
    const bounds = [String(to), String(MAX_READ), objectPrefix(this.#namespace, run.shard)];
    for (let from = `(${run.end}`;;) {
      const args = [String(this.#now()), this.#node, from, ...bounds, String(raise)];
      const entries = await exec(SCRIPTS.catch_up, keys, args) as Entry[];
      this.#take(run, entries, after);
      if (entries.length < MAX_READ) break;
      from = `(${entries[entries.length - 1]![0]}`;
    }
    run.end = raise;
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
    const [entries, end, epoch] = reply as [Entry[], number | string, string];
    if (this.#epochs[shard] !== epoch) {
      this.#epochs[shard] = epoch;
      this.#check = "";
    }
    this.#take(run, entries, after);
    if (entries.length < run.ask) {
      run.done = true;
      run.end = Number(end);
    } else run.from = `(${entries[entries.length - 1]![0]}`;
  }

  /** Objects read from a shard, into its run: those after the cursor. */
  #take(run: ShardRun, entries: readonly Entry[], after: ListCursor | undefined): void {
    // Read after the shard's position, all are after the cursor; from a place, not.
    const from = after?.lags === undefined ? after : undefined;
    for (const [score, id, fields] of entries) {
      const one = { order: Number(score), info: decodeObject(id, fields)! };
      run.last = one;
      if (isAfter(one.order, id, from)) run.placed.push(one);
    }
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

/** An object as the `page` and `catch_up` scripts return it: its place, id and fields. */
type Entry = [string, string, Fields];

/**
 * The check of the cursors of a store: six base-36 characters of a hash
 * (FNV-1a, 32 bits) of its namespace, shard count and the epochs of its
 * shards, so that a cursor of another store is told apart but for one in
 * 36⁶ (2.2 billion).
 */
function storeCheck(namespace: string, epochs: readonly string[]): string {
  const text = `${namespace}\n${epochs.length}\n${epochs.join("\n")}`;
  return (fnv1a(text) % 36 ** 6).toString(36).padStart(6, "0");
}

/**
 * The check the versions before gave the cursors of a namespace of
 * `shards` shards along with their positions: four base-36 characters of a
 * hash of both.
 */
function namespaceCheck(namespace: string, shards: number): string {
  return (fnv1a(`${namespace}\n${shards}`) % 36 ** 4).toString(36).padStart(4, "0");
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return hash;
}
