/**
 * How cluster members talk to each other: one JSON request and reply per
 * message, `POST <address>/v1/cluster/<path>`. {@link HttpClusterTransport}
 * sends them over HTTP with the cluster token; {@link InProcessNetwork}
 * carries them between members in one process, for tests.
 *
 * @module
 */
import { errorFromCode, ProtocolError, StoreUnavailableError } from "../core/errors.ts";
import { errorOf } from "../transport/http/errors.ts";

/** The path prefix of every cluster route. */
export const CLUSTER_PREFIX = "/v1/cluster";

/** Sends one cluster message and returns the reply. */
export interface ClusterTransport {
  /**
   * POSTs `body` as JSON to `<address>/v1/cluster/<path>`.
   *
   * @param address The member's base URL, such as `http://10.0.0.2:7070`.
   * @param path The message kind, such as `ping` or `directory/announce`.
   * @param body The JSON body.
   * @param timeout Milliseconds before the request is abandoned.
   * @param signal Ends the request early, such as when the member closes.
   * @returns The parsed JSON reply, `{}` for an empty one.
   * @throws {StoreUnavailableError} When the member cannot be reached or did not answer in time.
   * @throws {PackiceError} The member's own error, by its code.
   */
  send(
    address: string,
    path: string,
    body: unknown,
    timeout: number,
    signal?: AbortSignal,
  ): Promise<unknown>;
}

/** Options of {@link HttpClusterTransport}. */
export interface HttpClusterTransportOptions {
  /** The cluster token sent as `Authorization: Bearer`. */
  readonly token?: string;
}

/** The cluster's messages over HTTP with `fetch` (connections are kept alive and reused). */
export class HttpClusterTransport implements ClusterTransport {
  readonly #headers: Record<string, string>;

  /**
   * Creates the transport.
   *
   * @param options The cluster token.
   */
  constructor(options: HttpClusterTransportOptions = {}) {
    this.#headers = { "content-type": "application/json" };
    if (options.token !== undefined) this.#headers.authorization = `Bearer ${options.token}`;
  }

  /** See {@link ClusterTransport.send}. */
  async send(
    address: string,
    path: string,
    body: unknown,
    timeout: number,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const controller = new AbortController();
    const abort = () => controller.abort();
    const timer = setTimeout(abort, Math.max(1, timeout));
    signal?.addEventListener("abort", abort, { once: true });
    try {
      let response: Response;
      try {
        response = await fetch(`${address}${CLUSTER_PREFIX}/${path}`, {
          method: "POST",
          headers: this.#headers,
          body: JSON.stringify(body),
          signal: controller.signal,
        });
      } catch (error) {
        throw unreachable(address, path, controller.signal.aborted, error);
      }
      let text: string;
      try {
        if (!response.ok) throw await errorOf(response);
        text = await response.text();
      } catch (error) {
        if (controller.signal.aborted) throw unreachable(address, path, true, error);
        throw error;
      }
      if (text.length === 0) return {};
      try {
        return JSON.parse(text);
      } catch (error) {
        throw new ProtocolError(
          `Malformed reply from ${address} to ${path}: ${(error as Error).message}`,
        );
      }
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", abort);
    }
  }
}

function unreachable(
  address: string,
  path: string,
  timedOut: boolean,
  cause: unknown,
): StoreUnavailableError {
  const why = timedOut ? "no answer in time" : (cause as Error)?.message ?? String(cause);
  return new StoreUnavailableError(`Cannot reach member ${address} (${path}): ${why}`, { cause });
}

/** Answers a cluster message: the path after `/v1/cluster/` and the parsed JSON body. */
export type ClusterHandler = (path: string, body: unknown) => Promise<unknown>;

/**
 * Members in one process, for tests: each registers a handler under its
 * address, and messages go through a JSON round trip as they would on the
 * wire. An address can be paused (messages hang until their timeout) or
 * removed (refused at once), as a stopped or killed daemon.
 *
 * @example
 * ```ts
 * import { InProcessNetwork } from "./cluster_transport.ts";
 * const network = new InProcessNetwork();
 * network.register("http://a", async (path) => ({ path }));
 * console.log(await network.send("http://a", "ping", {}, 100)); // { path: "ping" }
 * ```
 */
export class InProcessNetwork implements ClusterTransport {
  readonly #handlers = new Map<string, ClusterHandler>();
  readonly #paused = new Set<string>();
  readonly #lag = new Map<string, number>();

  /** Makes `address` answer with `handler`. */
  register(address: string, handler: ClusterHandler): void {
    this.#handlers.set(address, handler);
  }

  /** Removes `address`: messages to it fail at once, as a killed process's. */
  unregister(address: string): void {
    this.#handlers.delete(address);
  }

  /** Delays every message the member at `address` sends by `ms`, as an overloaded process's. */
  lag(address: string, ms: number): void {
    this.#lag.set(address, ms);
  }

  /**
   * The transport of the member at `address`: its messages go nowhere once
   * the address is unregistered, as a killed process sends nothing, and
   * they wait out its {@link InProcessNetwork.lag} first.
   */
  from(address: string): ClusterTransport {
    return {
      send: async (to, path, body, timeout, signal) => {
        if (!this.#handlers.has(address)) {
          throw new StoreUnavailableError(`Member ${address} is gone`);
        }
        const lag = this.#lag.get(address) ?? 0;
        if (lag > 0) {
          await sleep(Math.min(lag, timeout), signal);
          if (lag >= timeout) {
            throw new StoreUnavailableError(
              `Cannot reach member ${to} (${path}): no answer in time`,
            );
          }
        }
        return await this.send(to, path, body, timeout - lag, signal);
      },
    };
  }

  /** Pauses or resumes `address`: while paused, messages to it hang until their timeout. */
  pause(address: string, paused: boolean): void {
    if (paused) this.#paused.add(address);
    else this.#paused.delete(address);
  }

  /** Whether `address` is paused. */
  paused(address: string): boolean {
    return this.#paused.has(address);
  }

  /** See {@link ClusterTransport.send}. */
  async send(
    address: string,
    path: string,
    body: unknown,
    timeout: number,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const handler = this.#handlers.get(address);
    if (handler === undefined) {
      throw new StoreUnavailableError(`Cannot reach member ${address} (${path}): refused`);
    }
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    const timer = setTimeout(
      () =>
        reject(
          new StoreUnavailableError(`Cannot reach member ${address} (${path}): no answer in time`),
        ),
      Math.max(1, timeout),
    );
    const abort = () =>
      reject(new StoreUnavailableError(`Cannot reach member ${address}: aborted`));
    signal?.addEventListener("abort", abort, { once: true });
    if (!this.#paused.has(address)) {
      handler(path, JSON.parse(JSON.stringify(body))).then(
        (reply) => resolve(JSON.parse(JSON.stringify(reply ?? {}))),
        (error) =>
          reject(errorFromCode(error?.code ?? "INTERNAL", String(error?.message ?? error))),
      );
    }
    try {
      return await promise;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", abort);
    }
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
