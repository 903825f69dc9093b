import type { Client } from "../client/client.ts";
import { ObjectWriter } from "../client/object_writer.ts";
import { Access } from "../core/lease.ts";
import {
  AlreadyExistsError,
  NotFoundError,
  NotSealedError,
  PackiceError,
  StoreUnavailableError,
} from "../core/errors.ts";

/** How long a commit may take before its reservation expires, should its writer die. */
const RESERVATION_TTL_MS = 30_000;
/** How long an update keeps retrying against other writers before giving up. */
const UPDATE_DEADLINE_MS = 10_000;

/** A version of the chain's value: 0 is the empty value, never stored. */
export interface Version<T> {
  readonly version: number;
  readonly value: T;
}

/** What an update function returns: the new value, or none to leave the chain as it is. */
export interface Change<T, R> {
  readonly value?: T;
  readonly result: R;
}

/**
 * A JSON value that several processes read and replace atomically through
 * one peer, built on the only atomic step a peer offers: CREATE of an id
 * fails when the id exists.
 *
 * Version n of the value is the sealed object `<prefix><n>`. A writer reads
 * the newest version n, reserves `<prefix><n+1>` with CREATE (the loser of a
 * race gets ALREADY_EXISTS and retries on the winner's value), checks that n
 * is still sealed (else its reservation reuses an id deleted long ago and is
 * dropped), writes and seals: the seal is the commit. Then it deletes the
 * versions below n, oldest first. So the sealed versions always form one
 * unbroken run whose top is the current value, and a reader that sees n+1
 * unsealed and then n still sealed has read the value current at that moment.
 * Objects are immutable, so a reader never sees half a value.
 */
export class IndexChain<T> {
  readonly #client: Client;
  readonly #prefix: string;
  readonly #empty: () => T;
  #hint = 0;
  #cached: Version<T> | undefined;

  constructor(client: Client, prefix: string, empty: () => T) {
    this.#client = client;
    this.#prefix = prefix;
    this.#empty = empty;
  }

  /** The current value. Treat it as read-only: it may be shared with later reads. */
  async read(): Promise<Version<T>> {
    const deadline = Date.now() + UPDATE_DEADLINE_MS;
    for (;;) {
      const found = await this.#tryRead();
      if (found !== undefined) return found;
      this.#hint = 0;
      if (Date.now() > deadline) throw busy(this.#prefix);
    }
  }

  /**
   * Applies `fn` to the current value and commits what it returns, retrying
   * on the newer value when another writer commits first. `fn` may run
   * several times and must not have side effects.
   */
  async update<R>(fn: (current: T) => Change<T, R>): Promise<R> {
    const deadline = Date.now() + UPDATE_DEADLINE_MS;
    for (let attempt = 0;; attempt++) {
      if (attempt > 0) {
        if (Date.now() > deadline) throw busy(this.#prefix);
        await delay(Math.min(50, attempt) * Math.random());
      }
      const current = await this.read();
      const change = fn(current.value);
      if (change.value === undefined) return change.result;
      const next = current.version + 1;
      if (await this.#commit(next, change.value)) {
        this.#hint = next;
        this.#cached = { version: next, value: change.value };
        await this.#collect(next - 2);
        return change.result;
      }
    }
  }

  /** Deletes every version. The chain reads as empty afterwards. */
  async clear(): Promise<void> {
    const versions = await this.#versions();
    for (const version of versions.sort((a, b) => a - b)) await this.#delete(version);
    this.#hint = 0;
    this.#cached = undefined;
  }

  async #tryRead(): Promise<Version<T> | undefined> {
    let version = this.#hint === 0 ? await this.#newestListed() : this.#hint;
    if (version === 0) return { version: 0, value: this.#empty() };
    while (await this.#sealed(version + 1)) version++;
    const cached = this.#cached;
    if (cached !== undefined && cached.version === version) {
      if (!(await this.#sealed(version))) return undefined;
      this.#hint = version;
      return cached;
    }
    const value = await this.#load(version);
    if (value === undefined) return undefined;
    this.#hint = version;
    this.#cached = { version, value };
    return this.#cached;
  }

  async #commit(version: number, value: T): Promise<boolean> {
    const bytes = new TextEncoder().encode(JSON.stringify(value));
    const peer = this.#client.peer;
    let acquired;
    try {
      // The TTL is the reservation's (the lease's) alone: a sealed version must never expire.
      acquired = await peer.acquire(this.#prefix + version, Access.CREATE, {
        size: bytes.length,
        ttl: RESERVATION_TTL_MS,
      });
    } catch (error) {
      if (error instanceof AlreadyExistsError) return false;
      throw error;
    }
    await using writer = new ObjectWriter(peer, acquired);
    await writer.write(bytes);
    if (!(await this.#fresh(version))) return false;
    try {
      await writer.seal();
    } catch (error) {
      // The reservation expired or was removed as stale: another writer goes on.
      if (error instanceof PackiceError && !(error instanceof StoreUnavailableError)) return false;
      throw error;
    }
    return true;
  }

  /** Whether a reservation of `version` builds on the current value, not on one deleted since. */
  async #fresh(version: number): Promise<boolean> {
    if (version > 1) return await this.#sealed(version - 1);
    // Version 1 has no predecessor to check; a deleted version 1 means a newer one exists.
    return (await this.#versions()).every((other) => other <= 1);
  }

  /** Deletes `version` and the versions below it, oldest first, so the sealed ones stay a run. */
  async #collect(version: number): Promise<void> {
    if (version < 1) return;
    let lowest = version;
    while (lowest > 1 && await this.#exists(lowest - 1)) lowest--;
    for (let old = lowest; old <= version; old++) await this.#delete(old);
  }

  async #load(version: number): Promise<T | undefined> {
    let handle;
    try {
      handle = await this.#client.get(this.#prefix + version);
    } catch (error) {
      if (error instanceof NotFoundError || error instanceof NotSealedError) return undefined;
      throw error;
    }
    using _ = handle;
    let text = "";
    const decoder = new TextDecoder();
    for (const blob of handle.blobs) text += decoder.decode(blob, { stream: true });
    return JSON.parse(text + decoder.decode());
  }

  async #sealed(version: number): Promise<boolean> {
    try {
      return (await this.#client.stat(this.#prefix + version)).state === "SEALED";
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  #exists(version: number): Promise<boolean> {
    return this.#client.has(this.#prefix + version);
  }

  async #delete(version: number): Promise<void> {
    try {
      await this.#client.delete(this.#prefix + version);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
  }

  async #newestListed(): Promise<number> {
    let newest = 0;
    for (const version of await this.#versions(true)) newest = Math.max(newest, version);
    return newest;
  }

  async #versions(sealedOnly = false): Promise<number[]> {
    const versions: number[] = [];
    for (const info of await this.#client.list()) {
      if (!info.id.startsWith(this.#prefix)) continue;
      if (sealedOnly && info.state !== "SEALED") continue;
      const version = Number(info.id.slice(this.#prefix.length));
      if (Number.isSafeInteger(version) && version > 0) versions.push(version);
    }
    return versions;
  }
}

function busy(prefix: string): StoreUnavailableError {
  return new StoreUnavailableError(
    `Cannot update ${prefix}*: other writers kept committing first for ${UPDATE_DEADLINE_MS} ms`,
  );
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
