/**
 * Lists in pages: the one rule of what a page holds and where the next one
 * starts, for every peer and transport.
 *
 * A page's objects follow the peer's put order (`Holding.order`, the
 * numbers of `PutsBeside.orderPuts`), or, on a shared lease store that keeps
 * a put order of its own (`LeaseStore.listAfter`: Redis), the store's, the
 * same for every peer on it; ties (objects of one place, or a store's that
 * this peer holds no place for) broken by id. Objects being created are in
 * a page as in the peer's `list()`. A cursor names the
 * place after the last object of a page, not the object: an object deleted
 * between pages leaves its place behind, so no live object is skipped or
 * repeated, and objects put meanwhile come later in put order.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import type { ObjectInfo } from "./object.ts";
import type { Peer } from "./peer.ts";
import { isPlainObject } from "./plain_object.ts";
import { shown } from "./shown.ts";

/** Objects in a page when the caller names no limit. */
export const DEFAULT_PAGE = 1_000;
/** The most objects one page holds. */
export const MAX_PAGE = 10_000;
/** About the most bytes of JSON one page holds: a page stops early rather than pass it. */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;

/**
 * Which page of a peer's list to read.
 *
 * @example From the start, 500 objects a page
 * ```ts
 * import type { ListPageOptions } from "./list_page.ts";
 * const first: ListPageOptions = { limit: 500 };
 * ```
 */
export interface ListPageOptions {
  /** The `next` of the page before; from the start when absent. */
  readonly after?: string;
  /** The most objects to return, 1 to {@link MAX_PAGE}; {@link DEFAULT_PAGE} when absent. */
  readonly limit?: number;
}

/** One page of a peer's list. */
export interface ListPage {
  /** Its objects, in put order. */
  readonly objects: ObjectInfo[];
  /** Where the next page starts (pass it as `after`); absent at the end of the list. */
  readonly next?: string;
}

/**
 * A place in a peer's put order: see {@link ListPageOptions.after}. As text,
 * `<order>:<id>`, or `<stage>.<order>:<id>` from a peer that lists more than
 * one peer one after the other (a cluster's own objects, then its fetched
 * copies). A store that keeps a put order of its own (Redis) adds a check of
 * the store that made it, six base-36 characters: `<order>-<check>:<id>`,
 * the same length for any number of shards.
 *
 * The forms of the versions before are still read (a list started at a
 * daemon of one goes on at this one): `<order>:<id>` from any store, and
 * from a Redis Cluster a position per shard after the order, with or
 * without a check of its namespace and shard count:
 * `<order>~<shards>.<lag>.<lag>…_<check>:<id>`, numbers in base 36, a lag
 * of 0 left empty and trailing ones left out. None is made any more.
 */
export interface ListCursor {
  /** Which of the peers listed one after the other; 0 for a peer of one. */
  readonly stage: number;
  /** The put order number of the last object listed. */
  readonly order: number;
  /** Its id, to break ties. */
  readonly id: string;
  /**
   * Only in a cursor of a version before, from a Redis Cluster: one per
   * shard; on shard `i`, the objects listed are those placed up to
   * `order - lags[i]`, and only those (the id breaks no tie). Absent: those
   * before `order` and `id`, on every shard.
   */
  readonly lags?: readonly number[];
  /**
   * What the store that made it tells its cursors by, so that it refuses a
   * cursor of another: without `lags`, six base-36 characters (of a Redis
   * store's namespace, shard count and the epochs of its shards); with
   * them, one to eight (of a Redis Cluster's namespace and shard count, as
   * a version before made it). Absent from cursors of a peer without such
   * a store, and from those made before there was one.
   */
  readonly check?: string;
}

/** An object with its place in put order, a candidate for a page. */
export interface Placed {
  /** Its place in put order; 0 for one of no known place. */
  readonly order: number;
  /** The object. */
  readonly info: ObjectInfo;
  /**
   * From a store that keeps a put order of its own: the cursor of a page
   * that ends at this object, with the store's check. Absent: its place and
   * id.
   */
  readonly next?: () => ListCursor;
}

/** The most shards a cursor of a version before names: as many as a Redis Cluster has hash slots. */
export const MAX_CURSOR_SHARDS = 16_384;

// The id: any an object can have, spaces too (see `core/validate.ts`).
// The forms of the versions before: see `ListCursor`.
const CURSOR =
  // deno-lint-ignore no-control-regex
  /^(?:([1-9])\.)?(0|[1-9][0-9]{0,15})(?:~([1-9a-z][0-9a-z]{0,2})((?:\.[0-9a-z]{0,11})*)(?:_([0-9a-z]{1,8}))?|-([0-9a-z]{6}))?:([^\u0000-\u001f\u007f]{0,1024})$/;

/**
 * Checks a page request from a caller or the wire.
 *
 * @param options The request.
 * @param stages The peers listed one after the other: cursors of stages past them are refused.
 * @throws {InvalidArgumentError} When `options` is not an object, its cursor
 *   is not one a page returned, or its limit is not an integer from 1 to
 *   {@link MAX_PAGE}.
 */
export function listPageRequest(
  options: unknown,
  stages = 1,
): { after?: ListCursor; limit: number } {
  if (!isPlainObject(options)) {
    throw new InvalidArgumentError(`Invalid list page: expected an object, got ${shown(options)}`);
  }
  const { after, limit = DEFAULT_PAGE } = options as { after?: unknown; limit?: unknown };
  if (
    typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE
  ) {
    throw new InvalidArgumentError(
      `Invalid list page limit: expected an integer from 1 to ${MAX_PAGE}, got ${shown(limit)}`,
    );
  }
  if (after === undefined) return { limit };
  const match = typeof after === "string" ? CURSOR.exec(after) : null;
  const order = Number(match?.[2]);
  const lags = match?.[3] === undefined ? undefined : lagsOf(match[3], match[4]!, order);
  if (match === null || Number(match[1] ?? 0) >= stages || lags === null) {
    throw new InvalidArgumentError(
      `Invalid list cursor: pass the next of a page as it came, got ${shown(after)}`,
    );
  }
  const cursor = { stage: Number(match[1] ?? 0), order, id: match[7]! };
  const check = match[5] ?? match[6];
  return {
    after: {
      ...cursor,
      ...(lags === undefined ? {} : { lags }),
      ...(check === undefined ? {} : { check }),
    },
    limit,
  };
}

/** The lags of a cursor's text, or null when they are not ones a page gives. */
function lagsOf(count: string, text: string, order: number): number[] | null {
  const shards = parseInt(count, 36);
  const parts = text === "" ? [] : text.slice(1).split(".");
  if (shards > MAX_CURSOR_SHARDS || parts.length > shards || parts.at(-1) === "") return null;
  const lags = new Array<number>(shards).fill(0);
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === "") continue;
    const lag = parseInt(part, 36);
    if (part[0] === "0" || lag > order) return null;
    lags[i] = lag;
  }
  return lags;
}

/**
 * A cursor as text, as {@link listPageRequest} reads it (one of a version
 * before as that version wrote it).
 *
 * @example The cursor after object "abc" at place 42
 * ```ts
 * import { formatCursor } from "./list_page.ts";
 * console.assert(formatCursor({ stage: 0, order: 42, id: "abc" }) === "42:abc");
 * ```
 */
export function formatCursor(cursor: ListCursor): string {
  let text = cursor.stage === 0 ? `${cursor.order}` : `${cursor.stage}.${cursor.order}`;
  const { lags } = cursor;
  if (lags !== undefined) {
    let end = lags.length;
    while (end > 0 && lags[end - 1] === 0) end--;
    text += `~${lags.length.toString(36)}`;
    for (let i = 0; i < end; i++) text += lags[i] === 0 ? "." : `.${lags[i]!.toString(36)}`;
    if (cursor.check !== undefined) text += `_${cursor.check}`;
  } else if (cursor.check !== undefined) text += `-${cursor.check}`;
  return `${text}:${cursor.id}`;
}

/**
 * The cursor of a page that ends at `placed`: the one a store that keeps a
 * put order of its own gave it, or its place and id.
 *
 * @example After an object at place 42
 * ```ts
 * import { cursorAfter } from "./list_page.ts";
 * const info = {
 *   id: "abc",
 *   state: "SEALED",
 *   size: 0,
 *   blobSizes: [],
 *   meta: {},
 *   createdAt: 0,
 * } as const;
 * const cursor = cursorAfter({ order: 42, info });
 * console.assert(cursor.order === 42 && cursor.id === "abc");
 * ```
 */
export function cursorAfter(placed: Placed): ListCursor {
  return placed.next?.() ?? { stage: 0, order: placed.order, id: placed.info.id };
}

/** Whether an object at `order` with id `id` comes after `cursor`. */
export function isAfter(order: number, id: string, cursor: ListCursor | undefined): boolean {
  if (cursor === undefined) return true;
  return order > cursor.order || (order === cursor.order && id > cursor.id);
}

/** The order of two placed objects in a list: by place, then by id. */
export function byPlace(a: Placed, b: Placed): number {
  return a.order - b.order || (a.info.id < b.info.id ? -1 : a.info.id > b.info.id ? 1 : 0);
}

/**
 * The page made of `candidates`: every object after the cursor, in runs
 * each in put order already (or not: they are sorted). Each run needs hold
 * only its first `limit + 1`.
 *
 * @param runs The candidates, in one or more runs.
 * @param limit The most objects in the page.
 */
export function pageOf(runs: readonly Placed[][], limit: number): ListPage {
  const all = runs.length === 1 ? runs[0]! : runs.flat();
  if (!inOrder(all)) all.sort(byPlace);
  const objects: ObjectInfo[] = [];
  let bytes = 0;
  for (const { info } of all) {
    if (objects.length === limit) break;
    bytes += jsonLength(info);
    if (bytes > MAX_PAGE_BYTES && objects.length > 0) break;
    objects.push(info);
  }
  if (objects.length === all.length) return { objects };
  return { objects, next: formatCursor(cursorAfter(all[objects.length - 1]!)) };
}

/** About the length of `info` as JSON, or a little over, made only of its metadata and holders. */
function jsonLength(info: ObjectInfo): number {
  let length = 320 + 16 * info.blobSizes.length;
  for (const _ in info.meta) {
    length += JSON.stringify(info.meta).length;
    break;
  }
  if (info.holders !== undefined) length += JSON.stringify(info.holders).length;
  return length;
}

function inOrder(placed: readonly Placed[]): boolean {
  for (let i = 1; i < placed.length; i++) if (byPlace(placed[i - 1]!, placed[i]!) > 0) return false;
  return true;
}

/**
 * The candidates of a page among `infos`, in their order: those after the
 * cursor, the first `limit + 1` of them in put order. Every one is read: a
 * store's list need not be in put order (a shared one's is not).
 *
 * @param orderOf An object's place in put order; undefined for one of no
 *   known place, which takes the place of the one before it.
 */
export function placedAfter(
  infos: readonly ObjectInfo[],
  orderOf: (info: ObjectInfo) => number | undefined,
  after: ListCursor | undefined,
  limit: number,
): Placed[] {
  const placed: Placed[] = [];
  let before = 0;
  let sorted = true;
  for (const info of infos) {
    const order = orderOf(info) ?? before;
    before = order;
    if (!isAfter(order, info.id, after)) continue;
    const one = { order, info };
    const last = placed[placed.length - 1];
    // Past the first `limit + 1` in order: not in this page. Any later may be earlier, though.
    if (sorted && placed.length > limit && byPlace(last!, one) < 0) continue;
    if (last !== undefined && byPlace(last, one) > 0) sorted = false;
    placed.push(one);
  }
  if (!sorted) placed.sort(byPlace);
  return placed.length > limit + 1 ? placed.slice(0, limit + 1) : placed;
}

/**
 * A page of `peer`'s list: its own `listPage`, or, for a peer without one,
 * a page of its whole list in id order (it knows no put order).
 *
 * @throws {InvalidArgumentError} For a malformed cursor or a limit out of range.
 */
export async function listPageOf(
  peer: Pick<Peer, "list" | "listPage">,
  options?: ListPageOptions,
): Promise<ListPage> {
  if (peer.listPage !== undefined) return peer.listPage(options);
  const { after, limit } = listPageRequest(options ?? {});
  return pageOf([placedAfter(await peer.list(), () => 0, after, limit)], limit);
}

/**
 * Every object of `peer`, pulled a page of {@link DEFAULT_PAGE} at a time:
 * `list()` for a peer whose pages cross a transport.
 */
export async function listInPages(
  peer: Required<Pick<Peer, "listPage">>,
): Promise<ObjectInfo[]> {
  const all: ObjectInfo[] = [];
  let after: string | undefined;
  do {
    const page = await peer.listPage(after === undefined ? {} : { after });
    for (const info of page.objects) all.push(info);
    after = page.next;
  } while (after !== undefined);
  return all;
}
