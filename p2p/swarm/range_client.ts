/**
 * What a transfer asks holders for pieces with: native keep-alive
 * connections ({@link RangeConnection}), kept per holder between requests,
 * where the native library is loaded and the holder's address is plain
 * `http:` at an IP address; Deno's `fetch` otherwise.
 *
 * @module
 */
import { loadNative, type Native } from "../../native/load.ts";
import { RangeConnection } from "./range_connection.ts";

/** Idle connections kept per holder. */
const IDLE_MAX = 8;

/**
 * Native requests under way at most, process-wide: each holds a thread of
 * Deno's blocking pool (32 threads, shared with file-system calls, hashing
 * and the memfd pool) while it waits for bytes, and a stalled holder holds
 * it until the piece's deadline. Requests past this many use `fetch`.
 */
const NATIVE_MAX = 16;
let nativeInFlight = 0;

/** Where a native connection goes: an IP address (no brackets) and a port. */
export interface Endpoint {
  /** IPv4 or IPv6 text. */
  readonly ip: string;
  /** The TCP port. */
  readonly port: number;
  /** The `Host` header's value. */
  readonly host: string;
}

/** The HTTP client of a transfer: native connections, else `fetch` through {@link RangeClient.http}. */
export class RangeClient {
  readonly #lib: Native["symbols"] | undefined;
  #http: Deno.HttpClient | undefined;
  readonly #idle = new Map<string, RangeConnection[]>();
  readonly #busy = new Set<RangeConnection>();
  #closed = false;

  /**
   * Creates a client; it opens connections as requests need them.
   *
   * @param options `native: false` always uses `fetch` (as without the native library).
   */
  constructor(options: { readonly native?: boolean } = {}) {
    let lib: Native["symbols"] | undefined;
    if (options.native !== false) {
      try {
        lib = loadNative()?.symbols;
      } catch {
        // No permission or a broken override: fetch.
      }
    }
    this.#lib = lib;
  }

  /** The `fetch` client, for the requests no native connection takes. */
  get http(): Deno.HttpClient {
    return this.#http ??= Deno.createHttpClient({});
  }

  /**
   * Where a native connection to the holder at `address` (an origin URL)
   * would go, or undefined when `fetch` is to be used: no native library,
   * `https:`, a host name rather than an IP address, or as many native
   * requests under way as the thread pool may give them.
   */
  endpoint(address: URL): Endpoint | undefined {
    if (this.#lib === undefined || this.#closed || address.protocol !== "http:") return undefined;
    if (nativeInFlight >= NATIVE_MAX) return undefined;
    const name = address.hostname;
    const ip = name.startsWith("[") ? name.slice(1, -1) : name;
    if (!/^[\d.]+$/.test(ip) && !ip.includes(":")) return undefined;
    return { ip, port: address.port === "" ? 80 : Number(address.port), host: address.host };
  }

  /**
   * A connection to `endpoint`, idle or new, and whether it was idle (a
   * keep-alive connection the holder may have closed meanwhile).
   *
   * @throws {ConnectionError} When no socket could be made.
   */
  take(endpoint: Endpoint): { connection: RangeConnection; reused: boolean } {
    if (this.#closed) throw new Error("Cannot take a connection of a closed client");
    const idle = this.#idle.get(key(endpoint))?.pop();
    const connection = idle ?? RangeConnection.open(this.#lib!, endpoint.ip, endpoint.port);
    this.#busy.add(connection);
    nativeInFlight++;
    return { connection, reused: idle !== undefined };
  }

  /**
   * Gives a connection back once its call is over: kept for the next request
   * when `reusable` (a response read to its end, no byte more), else closed.
   */
  give(endpoint: Endpoint, connection: RangeConnection, reusable: boolean): void {
    if (!this.#busy.delete(connection)) return;
    nativeInFlight--;
    const idle = this.#idle.get(key(endpoint)) ?? [];
    if (!reusable || this.#closed || idle.length >= IDLE_MAX) return connection.close();
    idle.push(connection);
    this.#idle.set(key(endpoint), idle);
  }

  /**
   * Closes the idle connections and the `fetch` client, and cancels the
   * calls under way (their connections close as they are given back). Idempotent.
   */
  close(): void {
    this.#closed = true;
    for (const connection of this.#busy) connection.cancel();
    for (const idle of this.#idle.values()) for (const connection of idle) connection.close();
    this.#idle.clear();
    try {
      this.#http?.close();
    } catch {
      // Closed already.
    }
  }
}

function key(endpoint: Endpoint): string {
  return `${endpoint.ip} ${endpoint.port}`;
}
