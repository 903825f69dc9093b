/**
 * Subscriptions to Redis channels over one connection of their own (a
 * subscribed connection takes no other command): sharded pub/sub
 * (`SSUBSCRIBE`, Redis 7), so that on a cluster a message stays on the shard
 * of its channel's slot, or plain `SUBSCRIBE` on an older Redis (see
 * `pushLink` in `link.ts`). A lost connection is made again after a pause
 * and every channel subscribed again; meanwhile, and until Redis confirms a
 * channel, its subscriptions are not {@link Subscription.live}: their owners
 * look things up instead.
 *
 * @module
 */
import type { RedisLogger } from "./connection.ts";
import { type PushLink, pushLink, redact } from "./link.ts";

/** A subscription to one channel; disposing of it ends it. */
export interface Subscription extends Disposable {
  /** Whether Redis confirmed the channel on the connection up now. */
  readonly live: boolean;
}

interface Channel {
  readonly listeners: Set<(payload: string) => void>;
  /** Confirmed by Redis on the current connection. */
  live: boolean;
}

/** Milliseconds between attempts to make a lost connection again. */
const RETRY_MS = 1000;

/**
 * Channels subscribed on one connection, shared by their listeners.
 *
 * @example Listen to a channel while a job runs
 * ```ts ignore
 * const subscriber = new RedisSubscriber("redis://127.0.0.1:6379/0");
 * using subscription = subscriber.subscribe("news:{a}", (payload) => console.log(payload));
 * // ... subscription.live once Redis confirmed it
 * await subscriber.close();
 * ```
 */
export class RedisSubscriber {
  readonly #url: string;
  readonly #log: RedisLogger | undefined;
  readonly #channels = new Map<string, Channel>();
  #link: PushLink | undefined;
  #opening: Promise<void> | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * @param url The Redis to subscribe at: standalone or a cluster.
   * @param log Where a lost connection is reported.
   */
  constructor(url: string, log?: RedisLogger) {
    this.#url = url;
    this.#log = log;
  }

  /** Channels subscribed now. */
  get channels(): number {
    return this.#channels.size;
  }

  /**
   * Calls `deliver` with each message published on `channel` until the
   * subscription is disposed of. The first listener of a channel subscribes
   * it; the last one leaving unsubscribes it.
   */
  subscribe(channel: string, deliver: (payload: string) => void): Subscription {
    let entry = this.#channels.get(channel);
    if (entry === undefined && !this.#closed) {
      this.#channels.set(channel, entry = { listeners: new Set(), live: false });
      this.#send(channel, true);
    }
    entry?.listeners.add(deliver);
    const channels = this.#channels;
    const send = (subscribe: boolean) => this.#send(channel, subscribe);
    return {
      get live() {
        return entry !== undefined && channels.get(channel) === entry && entry.live;
      },
      [Symbol.dispose]() {
        if (entry === undefined || !entry.listeners.delete(deliver)) return;
        if (entry.listeners.size > 0 || channels.get(channel) !== entry) return;
        channels.delete(channel);
        send(false);
      },
    };
  }

  /** Ends the connection and every subscription. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    for (const channel of this.#channels.values()) channel.live = false;
    this.#channels.clear();
    await this.#opening;
    this.#link?.destroy();
    this.#link = undefined;
  }

  /** Subscribes or unsubscribes `channel` on the connection, opening it first when needed. */
  #send(channel: string, subscribe: boolean): void {
    if (this.#closed) return;
    const link = this.#link;
    if (link === undefined) {
      // The connection, once open, subscribes every channel listened to then.
      if (subscribe) this.#open();
      return;
    }
    const entry = this.#channels.get(channel);
    (subscribe ? link.subscribe(channel) : link.unsubscribe(channel)).then(() => {
      // Confirmed for the listeners of then, on the connection of then.
      if (subscribe && entry !== undefined && this.#channels.get(channel) === entry) {
        if (this.#link === link) entry.live = true;
      }
    }, (error) => {
      if (subscribe && this.#link === link) {
        this.#log?.warn(`Cannot subscribe ${channel}: ${(error as Error)?.message ?? error}`);
      }
    });
  }

  #open(): void {
    if (this.#opening !== undefined || this.#retry !== undefined || this.#closed) return;
    this.#opening = (async () => {
      let link: PushLink | undefined;
      try {
        link = await pushLink(
          this.#url,
          (channel, payload) => this.#deliver(channel, payload),
          (cause) => this.#lost(link, cause),
        );
      } catch (error) {
        this.#lost(undefined, error);
        return;
      }
      if (this.#closed) {
        link.destroy();
        return;
      }
      this.#link = link;
      for (const channel of this.#channels.keys()) this.#send(channel, true);
    })().finally(() => this.#opening = undefined);
  }

  #deliver(channel: string, payload: string): void {
    for (const deliver of this.#channels.get(channel)?.listeners ?? []) deliver(payload);
  }

  /** The connection went (or could not be made): every channel waits for the next one. */
  #lost(link: PushLink | undefined, cause: unknown): void {
    if (this.#closed || (link !== undefined && link !== this.#link)) return;
    this.#link?.destroy();
    this.#link = undefined;
    for (const channel of this.#channels.values()) channel.live = false;
    this.#log?.warn(
      `Subscriptions at ${redact(this.#url)} lost (${(cause as Error)?.message ?? cause}): ` +
        `again in ${RETRY_MS} ms`,
    );
    if (this.#channels.size === 0 || this.#retry !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#channels.size > 0) this.#open();
    }, RETRY_MS);
  }
}
