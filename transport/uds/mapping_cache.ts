import { check } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import { Mapping } from "../../native/mapping.ts";

/** How long a mapping no lease uses is kept for the next READ of the same blob, in milliseconds. */
const GRACE_MS = 50;
/** The most mappings kept with no lease using them. */
const MAX_IDLE = 64;

/**
 * A read-only mapping of a sealed memfd, shared by the READ leases of one
 * connection: each use that {@link MappingCache.map} or
 * {@link MappingCache.share} hands out is this one object, counted, not an
 * object of its own (a get makes one).
 */
export interface SharedMapping {
  /** Names the mapping in {@link MappingCache.share}. */
  readonly key: string;
  /** The mapping; open and close views of it, never close it. */
  readonly mapping: Mapping;
  /** Ends one use: called exactly once for each use handed out, when its lease ends. */
  release(): void;
}

/** A mapping in the cache, and how many use it. */
class Entry implements SharedMapping {
  readonly key: string;
  readonly mapping: Mapping;
  users = 0;
  idleSince = 0;
  readonly #cache: MappingCache;

  constructor(cache: MappingCache, key: string, mapping: Mapping) {
    this.#cache = cache;
    this.key = key;
    this.mapping = mapping;
  }

  release(): void {
    this.#cache.unuse(this);
  }
}

/**
 * Read-only mappings of sealed memfds, reused across READ leases: a sealed
 * memfd never changes, so a second lease on the same blob can use the
 * mapping the first one made instead of mapping it again. A memfd received
 * with a lease is recognised by its device and inode numbers, which stay
 * unique while this cache's mapping holds the file open. A mapping that no
 * lease uses is unmapped after {@link GRACE_MS} (it keeps the blob's memory
 * alive that long after the daemon may have freed it), or sooner when more
 * than {@link MAX_IDLE} wait.
 */
export class MappingCache {
  readonly #native: Native;
  readonly #entries = new Map<string, Entry>();
  readonly #identity = new BigUint64Array(2);
  #idle = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** @param native The native library. */
  constructor(native: Native) {
    this.#native = native;
  }

  /**
   * A read-only mapping of `size` bytes of the memfd `fd`, new or reused.
   * The caller still owns `fd` and closes it.
   */
  map(fd: number, size: number): SharedMapping {
    check(this.#native.symbols.pk_fd_identity(fd, this.#identity), "fstat");
    const key = `${this.#identity[0]}:${this.#identity[1]}:${size}`;
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = new Entry(this, key, Mapping.map(this.#native, fd, size));
      this.#entries.set(key, entry);
    }
    return this.#use(entry);
  }

  /**
   * Another use of a mapping this cache still holds, by its key; undefined
   * once it has been unmapped.
   */
  share(key: string): SharedMapping | undefined {
    const entry = this.#entries.get(key);
    return entry === undefined ? undefined : this.#use(entry);
  }

  #use(entry: Entry): SharedMapping {
    if (entry.users === 0 && entry.idleSince !== 0) this.#idle--;
    entry.users++;
    return entry;
  }

  /** A use of `entry` has ended. */
  unuse(entry: Entry): void {
    // Never below none: a stray release cannot start the unmapping of a mapping in use twice over.
    if (entry.users === 0) return;
    if (--entry.users > 0) return;
    entry.idleSince = Date.now();
    this.#idle++;
    if (this.#idle > MAX_IDLE) this.#sweep(Number.POSITIVE_INFINITY);
    this.#arm();
  }

  /** Unmaps every mapping, detaching views still open. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const entry of this.#entries.values()) this.#unmap(entry);
    this.#entries.clear();
    this.#idle = 0;
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#idle === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#sweep(GRACE_MS);
      this.#arm();
    }, GRACE_MS);
    Deno.unrefTimer(this.#timer);
  }

  /** Unmaps mappings idle for `age` ms or more; with an infinite age, the oldest beyond the cap. */
  #sweep(age: number): void {
    const now = Date.now();
    for (const entry of this.#entries.values()) {
      if (entry.users > 0) continue;
      const expired = age === Number.POSITIVE_INFINITY
        ? this.#idle > MAX_IDLE
        : now - entry.idleSince >= age;
      if (!expired) continue;
      this.#entries.delete(entry.key);
      this.#idle--;
      this.#unmap(entry);
    }
  }

  #unmap(entry: Entry): void {
    const range = entry.mapping.detach();
    if (range) {
      check(this.#native.symbols.pk_munmap_once(range.pointer, BigInt(range.length)), "munmap");
    }
  }
}
