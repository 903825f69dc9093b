/**
 * The object directory in Redis, beside the Redis lease store of the same
 * namespace: the store keeps who created which object and its leases; this
 * keeps, per object, the content record (digests) and every daemon that
 * holds exactly that content, fetched copies included.
 *
 * Keys, under `<namespace>:`:
 * - `dir:{<id>}`: a hash: `size`, `digest`, `pieceSize`, `pieces` (the piece
 *   digests' hex, concatenated, after `blake3:` unless SHA-256), and one `@<node>` field per holder valued
 *   with its address, followed for a partial holder (one still receiving the
 *   object) by a space and the base64 bitfield of the pieces it has; and
 *   a `^<node>` field valued `<port> <address>` with the port of the
 *   holder's native piece listener, when it announced one. A field of its
 *   own: older daemons read only the `@` fields, and ask for pieces at the
 *   address. It counts only while the holder's address is the one it was
 *   announced with: an `@` field written without it (by an older daemon
 *   under the same node id) leaves no stale port in force. The braces keep
 *   an object's keys in one Redis Cluster hash slot.
 * - `drops:{<node>}`: a set of `<digest> <id>` the node must drop: a
 *   removal puts one entry in the set of each holder, which polls it.
 * - `here:{<node>}`: set when the node connects; a poll of its removals that
 *   finds it gone finds a Redis that lost the directory (restarted empty,
 *   flushed), and the node announces again the objects it holds whole.
 * - `claim:{<key>}`: a string `<node> <address>` with a TTL, an exclusive
 *   claim (`SET NX PX`, renewed by its holder only); the braces put a claim
 *   on an object id in the slot of the object's entry.
 *
 * @module
 */
import { createHash } from "node:crypto";
import {
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  StoreUnavailableError,
} from "../../core/errors.ts";
import {
  type RedisBackoff,
  RedisConnection,
  type RedisLogger,
} from "../../backends/redis/connection.ts";
import type { Script } from "../../backends/redis/scripts.ts";
import { RedisSubscriber } from "../../backends/redis/subscriber.ts";
import { decodeBitfield, encodeBitfield } from "../swarm/bitfield.ts";
import { packPieceDigests, unpackPieceDigests } from "../piece_digest.ts";
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

/** Options of {@link RedisDirectory.connect}. */
export interface RedisDirectoryOptions {
  /** `redis://[user:pass@]host:port/db`. Default `redis://127.0.0.1:6379/0`. */
  readonly url?: string;
  /** Key prefix, the same as the lease store's. Default `packice`. */
  readonly namespace?: string;
  /** This daemon's node id: removals of objects it holds are sent to it. */
  readonly node: string;
  /** How often this node's removals are polled, in milliseconds. Default 500. */
  readonly pollInterval?: number;
  /** Attempts at the first connection; `Infinity` keeps trying. Default 10. */
  readonly connectAttempts?: number;
  /** Delays between connection attempts. */
  readonly backoff?: RedisBackoff;
  /** Milliseconds Redis has to answer each call. Default 2000. */
  readonly commandTimeout?: number;
  /** Where connection trouble is reported. */
  readonly log?: RedisLogger;
}

function script(name: string, body: string): Script {
  const source = body.trim();
  return { name, source, sha: createHash("sha1").update(source).digest("hex") };
}

/**
 * Picks how a script publishes a change of an entry's holders on its
 * channel: `SPUBLISH` (Redis 7, which tells its version to scripts), whose
 * message stays on the shard of the channel's slot, the entry's; `PUBLISH`
 * before it. The channel carries the entry's hash tag.
 */
const PUBLISH = "local publish = redis.REDIS_VERSION_NUM and 'SPUBLISH' or 'PUBLISH'";
/** Appends to `out` the fields of `f` (an entry's HGETALL) that name holders ('@') and piece ports ('^'). */
const HOLDER_FIELDS = `
for i = 1, #f, 2 do
  local first = string.byte(f[i], 1)
  if first == 64 or first == 94 then
    out[#out + 1] = f[i]
    out[#out + 1] = f[i + 1]
  end
end`;

/** Each script takes its one key in `KEYS[1]`, so it runs on Redis Cluster too. */
const SCRIPTS = {
  /**
   * KEYS[1]: the entry; ARGV: size, digest, pieceSize, pieces, node, address, join ('1' or ''),
   * binding ('' for none), piece port ('' for none), the entry's channel, and '1' to answer
   * with the holder and piece port fields after the status.
   */
  announce: script(
    "dir_announce",
    `
local k = KEYS[1]
local cur = redis.call('HGET', k, 'digest')
if cur and cur ~= ARGV[2] then return { 'CONFLICT', cur } end
if not cur then
  if ARGV[7] == '1' then return { 'NOT_FOUND' } end
  redis.call('HSET', k, 'size', ARGV[1], 'digest', ARGV[2], 'pieceSize', ARGV[3], 'pieces', ARGV[4])
  if ARGV[8] ~= '' then redis.call('HSET', k, 'binding', ARGV[8]) end
end
redis.call('HSET', k, '@' .. ARGV[5], ARGV[6])
if ARGV[9] ~= '' then redis.call('HSET', k, '^' .. ARGV[5], ARGV[9])
else redis.call('HDEL', k, '^' .. ARGV[5]) end
${PUBLISH}
redis.call(publish, ARGV[10], '+\\n' .. ARGV[2] .. '\\n' .. ARGV[5] .. '\\n' .. ARGV[6] .. '\\n' .. ARGV[9])
if ARGV[11] ~= '1' then return { 'OK' } end
local out = { 'OK' }
local f = redis.call('HGETALL', k)
${HOLDER_FIELDS}
return out
`,
  ),
  /** KEYS[1]: the entry; ARGV[1]: node, ARGV[2]: its channel. The entry goes with its last holder. */
  withdraw: script(
    "dir_withdraw",
    `
if redis.call('HDEL', KEYS[1], '@' .. ARGV[1], '^' .. ARGV[1]) > 0 then
  ${PUBLISH}
  redis.call(publish, ARGV[2], '-\\n' .. ARGV[1])
end
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.byte(name, 1) == 64 then return 'OK' end
end
redis.call('DEL', KEYS[1])
return 'OK'
`,
  ),
  /** KEYS[1]: the entry. */
  lookup: script("dir_lookup", "return redis.call('HGETALL', KEYS[1])"),
  /**
   * KEYS[1]: the entry. Its digest ('' without an entry), then its holder
   * and piece port fields and values.
   */
  holders: script(
    "dir_holders",
    `
local f = redis.call('HGETALL', KEYS[1])
local out = { '' }
for i = 1, #f, 2 do
  if f[i] == 'digest' then out[1] = f[i + 1] end
end
${HOLDER_FIELDS}
return out
`,
  ),
  /**
   * KEYS[1]: the entry; ARGV[1]: its channel. Forgets it; returns its
   * digest, then its holders' node ids.
   */
  remove: script(
    "dir_remove",
    `
local f = redis.call('HGETALL', KEYS[1])
if #f > 0 then
  ${PUBLISH}
  redis.call(publish, ARGV[1], 'x')
end
local out = { '' }
for i = 1, #f, 2 do
  if f[i] == 'digest' then out[1] = f[i + 1] end
  if string.byte(f[i], 1) == 64 then out[#out + 1] = string.sub(f[i], 2) end
end
redis.call('DEL', KEYS[1])
return out
`,
  ),
  /**
   * KEYS[1]: a claim; ARGV: `<node> <address>`, ttl ms. `SET NX PX`, or a
   * renewal by the same node; returns the holder's value.
   */
  claim: script(
    "dir_claim",
    `
local cur = redis.call('GET', KEYS[1])
if cur and string.match(cur, '^[^ ]*') ~= string.match(ARGV[1], '^[^ ]*') then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
`,
  ),
  /** KEYS[1]: a claim; ARGV[1]: node. Deleted only when that node holds it. */
  unclaim: script(
    "dir_unclaim",
    `
local cur = redis.call('GET', KEYS[1])
if cur and string.match(cur, '^[^ ]*') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 'OK'
`,
  ),
  /** KEYS[1]: a node's removals; ARGV[1]: `<digest> <id>`. */
  tell: script("dir_tell", "return redis.call('SADD', KEYS[1], ARGV[1])"),
  /** KEYS[1]: a node's mark. */
  mark: script("dir_mark", "return redis.call('SET', KEYS[1], '1')"),
  /**
   * KEYS[1]: a node's removals, KEYS[2]: its mark; ARGV[1]: how many to take.
   * '1' when the mark was missing (set now), else '', then the removals.
   */
  drops: script(
    "dir_drops_marked",
    `
local out = { redis.call('SET', KEYS[2], '1', 'NX') and '1' or '' }
for _, entry in ipairs(redis.call('SPOP', KEYS[1], ARGV[1])) do out[#out + 1] = entry end
return out
`,
  ),
} as const satisfies Record<string, Script>;

/** Removals taken per poll. */
const DROPS_PER_POLL = 500;

/**
 * A {@link Directory} in Redis.
 *
 * @example Announce, look up, remove
 * ```ts ignore
 * import { RedisDirectory } from "@packice/packice";
 * await using directory = await RedisDirectory.connect({ url: "redis://127.0.0.1:6379/0", node: "a" });
 * const entry = await directory.lookup("model.bin");
 * console.log(entry?.holders.map((holder) => holder.address));
 * ```
 */
export class RedisDirectory implements Directory {
  /** This daemon's node id. */
  readonly node: string;
  readonly #prefix: string;
  readonly #connection: RedisConnection;
  readonly #listeners = new Set<(removal: Removal) => void>();
  readonly #pollInterval: number;
  readonly #log: RedisLogger | undefined;
  /** Pushes of holder changes, over a connection of their own. */
  readonly #subscriber: RedisSubscriber;
  #poller: ReturnType<typeof setInterval> | undefined;
  #polling: Promise<void> | undefined;
  /** What this node announced it holds whole, by id: announced again when Redis lost it. */
  readonly #held = new Map<string, { record: ContentRecord; holder: Holder }>();
  /** Whether Redis lost the directory and not all of {@link RedisDirectory.#held} is back yet. */
  #lost = false;
  #closed = false;

  private constructor(options: RedisDirectoryOptions) {
    this.node = options.node;
    this.#prefix = `${options.namespace ?? "packice"}:`;
    this.#pollInterval = options.pollInterval ?? 500;
    this.#log = options.log;
    this.#connection = new RedisConnection({
      url: options.url ?? "redis://127.0.0.1:6379/0",
      attempts: options.connectAttempts ?? 10,
      backoff: { initial: options.backoff?.initial ?? 100, max: options.backoff?.max ?? 5000 },
      commandTimeout: options.commandTimeout ?? 2000,
      log: options.log,
      scripts: Object.values(SCRIPTS),
      onReady: () => Promise.resolve(),
    });
    this.#subscriber = new RedisSubscriber(options.url ?? "redis://127.0.0.1:6379/0", options.log);
  }

  /**
   * Connects to Redis, retrying with backoff.
   *
   * @throws {StoreUnavailableError} When Redis cannot be reached.
   */
  static async connect(options: RedisDirectoryOptions): Promise<RedisDirectory> {
    const directory = new RedisDirectory(options);
    try {
      await directory.#connection.open();
      await directory.#run(SCRIPTS.mark, directory.#mark(directory.node));
    } catch (error) {
      await directory.#connection.close();
      await directory.#subscriber.close();
      throw error;
    }
    return directory;
  }

  async announce(
    record: ContentRecord,
    holder: Holder,
    options: AnnounceOptions = {},
  ): Promise<Holder[] | undefined> {
    // A join writes no record fields (the entry has them): a partial holder
    // announces its pieces many times a second, without the piece digests.
    const join = options.existing === true;
    const pieces = join ? "" : packPieceDigests(record.pieceDigests);
    const [status, ...fields] = await this.#run(
      SCRIPTS.announce,
      this.#entry(record.id),
      join ? "" : String(record.size),
      record.digest,
      join ? "" : String(record.pieceSize),
      pieces,
      holder.node,
      holder.pieces === undefined
        ? holder.address
        : `${holder.address} ${encodeBitfield(holder.pieces)}`,
      join ? "1" : "",
      join ? "" : record.binding ?? "",
      holder.piecePort === undefined ? "" : `${holder.piecePort} ${holder.address}`,
      this.#channel(record.id),
      options.listing === true ? "1" : "",
    ) as string[];
    if (status === "CONFLICT") {
      throw new ConflictError(
        `Cannot announce object ${record.id}: the directory records other content (${
          fields[0]
        }), ` +
          `not ${record.digest}`,
      );
    }
    if (status === "NOT_FOUND") {
      throw new NotFoundError(`Cannot join object ${record.id}: no longer in the directory`);
    }
    if (holder.node === this.node && holder.pieces === undefined) {
      this.#held.set(record.id, { record, holder });
    }
    return options.listing === true ? holdersOf(fields) : undefined;
  }

  async withdraw(id: string, node: string): Promise<void> {
    if (node === this.node) this.#held.delete(id);
    await this.#run(SCRIPTS.withdraw, this.#entry(id), node, this.#channel(id));
  }

  async lookup(id: string): Promise<DirectoryEntry | undefined> {
    const fields = await this.#run(SCRIPTS.lookup, this.#entry(id)) as string[];
    if (fields.length === 0) return undefined;
    const values = new Map<string, string>();
    const holderFields: string[] = [];
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i]!;
      if (name.startsWith("@") || name.startsWith("^")) holderFields.push(name, fields[i + 1]!);
      else values.set(name, fields[i + 1]!);
    }
    const holders = holdersOf(holderFields);
    const pieceDigests = unpackPieceDigests(values.get("pieces") ?? "");
    if (pieceDigests === undefined) {
      throw new InvalidArgumentError(`Invalid directory record of object ${id}: piece digests`);
    }
    const binding = values.get("binding");
    return {
      id,
      size: Number(values.get("size")),
      digest: values.get("digest") ?? "",
      pieceSize: Number(values.get("pieceSize")),
      pieceDigests,
      ...(binding === undefined ? {} : { binding }),
      holders,
    };
  }

  /**
   * The holders of content `digest` of `id`, without the record: what a
   * transfer looks up again and again, without its piece digests.
   *
   * @returns Undefined when the entry is gone or records other content.
   */
  async holders(id: string, digest: string): Promise<Holder[] | undefined> {
    const [current, ...fields] = await this.#run(SCRIPTS.holders, this.#entry(id)) as string[];
    if (current !== digest) return undefined;
    return holdersOf(fields);
  }

  async remove(id: string): Promise<void> {
    this.#held.delete(id);
    const [digest, ...holders] = await this.#run(
      SCRIPTS.remove,
      this.#entry(id),
      this.#channel(id),
    ) as string[];
    // Each node's removals live in a slot of their own: one call per holder.
    await Promise.all(
      holders.map((node) => this.#run(SCRIPTS.tell, this.#drops(node), `${digest} ${id}`)),
    );
  }

  /** Takes `key` for `claimant` for `ttl` ms, or renews its claim; returns the holder now. */
  async claim(key: string, claimant: Holder, ttl: number): Promise<Holder> {
    const value = await this.#run(
      SCRIPTS.claim,
      this.#claim(key),
      `${claimant.node} ${claimant.address}`,
      String(Math.max(1, Math.round(ttl))),
    ) as string;
    const space = value.indexOf(" ");
    return { node: value.slice(0, space), address: value.slice(space + 1) };
  }

  /** Lets go of `key` when `node` holds it. */
  async unclaim(key: string, node: string): Promise<void> {
    await this.#run(SCRIPTS.unclaim, this.#claim(key), node);
  }

  /**
   * Calls `listener` with each change of `id`'s holders, published by the
   * announce, withdraw and remove scripts on the entry's channel (sharded
   * pub/sub on Redis 7: on a cluster, at the master of the entry's slot),
   * over a connection of its own shared by every watch.
   */
  watch(id: string, listener: (change: HolderChange) => void): HolderWatch {
    if (this.#closed) return { live: false, [Symbol.dispose]() {} };
    return this.#subscriber.subscribe(this.#channel(id), (payload) => {
      const change = changeOf(payload);
      if (change !== undefined) listener(change);
    });
  }

  /** Channels watched now: each running transfer watches its object's. */
  get watched(): number {
    return this.#subscriber.channels;
  }

  onRemove(listener: (removal: Removal) => void): () => void {
    this.#listeners.add(listener);
    if (this.#poller === undefined && !this.#closed) {
      this.#poller = setInterval(() => this.#poll(), this.#pollInterval);
      Deno.unrefTimer(this.#poller);
    }
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#poller);
    await this.#polling;
    await this.#subscriber.close();
    await this.#connection.close();
  }

  /** Same as {@link RedisDirectory.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #poll(): void {
    if (this.#polling !== undefined || !this.#connection.available) return;
    this.#polling = (async () => {
      const [lost, ...taken] = await this.#connection.run(
        SCRIPTS.drops,
        [this.#drops(this.node), this.#mark(this.node)],
        [String(DROPS_PER_POLL)],
      ) as string[];
      for (const entry of taken) {
        const space = entry.indexOf(" ");
        const removal = { digest: entry.slice(0, space), id: entry.slice(space + 1) };
        if (this.#held.get(removal.id)?.record.digest === removal.digest) {
          this.#held.delete(removal.id);
        }
        for (const listener of this.#listeners) listener(removal);
      }
      if (lost === "1" && this.#held.size > 0) {
        this.#log?.warn(
          `Redis lost the object directory (it restarted empty, or was flushed): announcing ` +
            `the ${this.#held.size} objects held by node ${this.node} again`,
        );
        this.#lost = true;
      }
      if (this.#lost) await this.#announceHeld();
    })().catch((error) => {
      if (!(error instanceof StoreUnavailableError)) {
        this.#log?.warn(`Cannot poll removals of node ${this.node}: ${(error as Error).message}`);
      }
    }).finally(() => this.#polling = undefined);
  }

  /** Announces again, one at a time, what this node held whole when Redis lost the directory. */
  async #announceHeld(): Promise<void> {
    for (const [id, { record, holder }] of [...this.#held]) {
      if (this.#closed) return;
      if (this.#held.get(id)?.record !== record) continue; // Withdrawn or replaced meanwhile.
      try {
        await this.announce(record, holder);
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        this.#held.delete(id);
        this.#log?.warn(`Cannot announce object ${id} again: ${error.message}`);
      }
    }
    this.#lost = false;
  }

  #run(script: Script, key: string, ...args: string[]): Promise<unknown> {
    return this.#connection.run(script, [key], args);
  }

  /** The key of `id`'s entry. */
  #entry(id: string): string {
    return `${this.#prefix}dir:{${id}}`;
  }

  /** The channel of `id`'s holder changes: in the slot of its entry. */
  #channel(id: string): string {
    return `${this.#prefix}holders:{${id}}`;
  }

  /** The key of a claim: in the slot of the object `key` names. */
  #claim(key: string): string {
    return `${this.#prefix}claim:{${key}}`;
  }

  /** The key of `node`'s removals. */
  #drops(node: string): string {
    return `${this.#prefix}drops:{${node}}`;
  }

  /** The key of `node`'s mark, in the slot of its removals. */
  #mark(node: string): string {
    return `${this.#prefix}here:{${node}}`;
  }
}

/**
 * The holders of an entry from its `@<node>` and `^<node>` fields, names and
 * values in turn. A piece port counts only beside the address it was
 * announced with.
 */
function holdersOf(fields: readonly string[]): Holder[] {
  const ports = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i]!.startsWith("^")) ports.set(fields[i]!.slice(1), fields[i + 1]!);
  }
  const holders: Holder[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (!fields[i]!.startsWith("@")) continue;
    const node = fields[i]!.slice(1);
    const holder = holderOf(node, fields[i + 1]!);
    const piecePort = portOf(ports.get(node), holder.address);
    holders.push(piecePort === undefined ? holder : { ...holder, piecePort });
  }
  return holders;
}

/**
 * A change of holders as the scripts publish it, lines apart: `+`, the
 * digest, the node, its `@` value and its `^` value (empty for none); `-`
 * and the node; or `x`. Undefined for anything else.
 */
function changeOf(payload: string): HolderChange | undefined {
  const parts = payload.split("\n");
  switch (parts[0]) {
    case "+": {
      if (parts.length !== 5) return undefined;
      const [, digest, node, value, port] = parts as [string, string, string, string, string];
      const fields = port === "" ? [`@${node}`, value] : [`@${node}`, value, `^${node}`, port];
      return { kind: "announced", digest, holder: holdersOf(fields)[0]! };
    }
    case "-":
      return parts.length === 2 ? { kind: "withdrawn", node: parts[1]! } : undefined;
    case "x":
      return { kind: "removed" };
    default:
      return undefined;
  }
}

/** A holder from its field's value: an address, and a partial holder's pieces after a space. */
function holderOf(node: string, value: string): Holder {
  const space = value.indexOf(" ");
  if (space < 0) return { node, address: value };
  const pieces = decodeBitfield(value.slice(space + 1));
  const address = value.slice(0, space);
  // Pieces that cannot be read: a holder of none, so it is never asked for any.
  return { node, address, pieces: pieces ?? new Uint8Array(0) };
}

/**
 * The port of a `^<node>` field's value (`<port> <address>`) when it was
 * announced with `address`; undefined for none, another address, or a value
 * that is not a port (pieces are then asked at the address).
 */
function portOf(value: string | undefined, address: string): number | undefined {
  if (value === undefined) return undefined;
  const space = value.indexOf(" ");
  if (space < 0 || value.slice(space + 1) !== address) return undefined;
  const port = Number(value.slice(0, space));
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? port : undefined;
}
