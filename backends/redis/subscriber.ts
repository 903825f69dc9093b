/**
 * Subscriptions to Redis channels over one connection of their own (a
 * subscribed connection takes no other command): sharded pub/sub
 * (`SSUBSCRIBE`, Redis 7), so that on a cluster a message stays on the shard
 * of its channel's slot, or plain `SUBSCRIBE` on an older Redis. A lost
 * connection is made again after a pause and every channel subscribed
 * again; meanwhile, and until Redis confirms a channel, its subscriptions
 * are not {@link Subscription.live}: their owners look things up instead.
 *
 * @module
 */
import { ErrorReply, type RespValue } from "./resp.ts";
import type { RespEndpoint } from "./resp_socket.ts";
import { RespSocket } from "./resp_socket.ts";
import type { RedisLogger } from "./connection.ts";

/** A subscription to one channel; disposing of it ends it. */
export interface Subscription extends Disposable {
  /** Whether Redis confirmed the channel on the connection up now. */
  readonly live: boolean;
}

interface Listener {
  readonly deliver: (payload: string) => void;
}

interface Channel {
  readonly listeners: Set<Listener>;
  /** Confirmed by Redis on the current connection. */
  live: boolean;
}

/** Milliseconds between attempts to make a lost connection again. */
const RETRY_MS = 1000;

/** Channels subscribed on one connection, shared by their listeners. */
export class RedisSubscriber {
  readonly #endpoint: RespEndpoint;
  readonly #log: RedisLogger | undefined;
  readonly #channels = new Map<string, Channel>();
  #socket: RespSocket | undefined;
  #opening: Promise<void> | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  /** Whether Redis knows `SSUBSCRIBE`; false once it said it does not. */
  #sharded = true;
  #closed = false;

  /**
   * @param endpoint The standalone Redis to subscribe at.
   * @param log Where a lost connection is reported.
   */
  constructor(endpoint: RespEndpoint, log?: RedisLogger) {
    this.#endpoint = endpoint;
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
    const listener: Listener = { deliver };
    let entry = this.#channels.get(channel);
    if (entry === undefined && !this.#closed) {
      this.#channels.set(channel, entry = { listeners: new Set(), live: false });
      this.#send(channel, true);
    }
    entry?.listeners.add(listener);
    const channels = this.#channels;
    const send = (subscribe: boolean) => this.#send(channel, subscribe);
    return {
      get live() {
        return entry !== undefined && channels.get(channel) === entry && entry.live;
      },
      [Symbol.dispose]() {
        if (entry === undefined || !entry.listeners.delete(listener)) return;
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
    await this.#opening?.catch(() => {});
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  /** Subscribes or unsubscribes `channel` on the connection, opening it first when needed. */
  #send(channel: string, subscribe: boolean): void {
    if (this.#closed) return;
    const socket = this.#socket;
    if (socket === undefined) {
      // The connection, once open, subscribes every channel listened to then.
      if (subscribe) this.#open();
      return;
    }
    const command = subscribe
      ? (this.#sharded ? "SSUBSCRIBE" : "SUBSCRIBE")
      : (this.#sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE");
    const entry = this.#channels.get(channel);
    socket.send([command, channel]).then(() => {
      // Confirmed for the listeners of then, on the connection of then.
      const now = this.#channels.get(channel);
      if (subscribe && now !== undefined && now === entry && this.#socket === socket) {
        now.live = true;
      }
    }, (error) => {
      if (
        subscribe && this.#sharded && error instanceof ErrorReply &&
        /unknown command/i.test(error.message)
      ) {
        // A Redis before 7: plain channels, which its announces publish on too.
        this.#sharded = false;
        if (this.#channels.has(channel)) this.#send(channel, true);
      }
    });
  }

  #open(): void {
    if (this.#opening !== undefined || this.#retry !== undefined || this.#closed) return;
    this.#opening = (async () => {
      let mine: RespSocket | undefined;
      try {
        mine = await RespSocket.open(
          this.#endpoint,
          (cause) => this.#lost(mine, cause),
          (opened) => mine = opened,
          (message) => this.#deliver(message),
        );
      } catch (error) {
        mine?.destroy();
        this.#lost(undefined, error);
        return;
      }
      if (this.#closed) {
        mine.destroy();
        return;
      }
      this.#socket = mine;
      for (const channel of this.#channels.keys()) this.#send(channel, true);
    })().finally(() => this.#opening = undefined);
  }

  #deliver(message: RespValue[]): void {
    const channel = message[1];
    const payload = message[2];
    if (typeof channel !== "string" || typeof payload !== "string") return;
    for (const listener of this.#channels.get(channel)?.listeners ?? []) {
      listener.deliver(payload);
    }
  }

  /** The connection went (or could not be made): every channel waits for the next one. */
  #lost(socket: RespSocket | undefined, cause: unknown): void {
    if (this.#closed) return;
    if (socket !== undefined && socket !== this.#socket) return;
    this.#socket?.destroy();
    this.#socket = undefined;
    for (const channel of this.#channels.values()) channel.live = false;
    this.#log?.warn(
      `Redis subscriptions lost (${(cause as Error)?.message ?? cause}): again in ${RETRY_MS} ms`,
    );
    if (this.#channels.size === 0 || this.#retry !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#channels.size > 0) this.#open();
    }, RETRY_MS);
  }
}
