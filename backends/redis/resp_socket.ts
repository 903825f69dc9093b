/**
 * One socket to a standalone Redis, auto-pipelined: every command issued in
 * one turn of the event loop goes out in one write, and the replies that
 * come back in one read settle their callers in one turn, so callers racing
 * each other share round trips without knowing of each other.
 *
 * @module
 */
import { CommandBuffer, ErrorReply, INCOMPLETE, ReplyParser, type RespValue } from "./resp.ts";
import { writeAtTurnEnd } from "./turn.ts";

/** Where a standalone Redis listens, and how to log in, from its URL. */
export interface RespEndpoint {
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** The database to `SELECT`; 0 needs none. */
  readonly database: number;
}

/** A caller waiting for its reply, in the order commands were sent. */
interface Waiter {
  readonly resolve: (value: RespValue) => void;
  readonly reject: (error: Error) => void;
}

/**
 * A connection to Redis that sends commands as callers issue them, batched
 * per turn, and settles each caller with its reply: an {@link ErrorReply}
 * rejects. When the connection fails, or Redis closes it, every waiting
 * caller rejects and `onLost` hears why, unless this side closed it.
 */
export class RespSocket {
  readonly #conn: Deno.Conn;
  readonly #onLost: (cause: unknown) => void;
  /** Where published messages go on a subscribed socket; undefined on others. */
  readonly #onPush: ((message: RespValue[]) => void) | undefined;
  /** Commands issued since the last write began. */
  #next = new CommandBuffer();
  /** Commands being written. */
  #out = new CommandBuffer();
  #writing = false;
  #scheduled = false;
  readonly #replies = new ReplyParser();
  #waiting: Waiter[] = [];
  #head = 0;
  #state: "open" | "closing" | "closed" = "open";
  /** Wakes {@link RespSocket.close} when the last waiting caller settled. */
  #drained: (() => void) | undefined;
  readonly #reading: Promise<void>;

  private constructor(
    conn: Deno.Conn,
    onLost: (cause: unknown) => void,
    onPush: ((message: RespValue[]) => void) | undefined,
  ) {
    this.#conn = conn;
    this.#onLost = onLost;
    this.#onPush = onPush;
    this.#reading = this.#read();
  }

  /**
   * Connects and logs in (`AUTH`, `SELECT`).
   *
   * @param endpoint Where, and with which credentials.
   * @param onLost Told once when the connection fails or Redis closes it.
   * @param opened Given the socket as soon as it exists, so that a caller can destroy it
   *   while it logs in.
   * @param onPush Given each message published on a channel it subscribed
   *   to (`message` and `smessage` arrays, which answer no command): only a
   *   socket that subscribes passes one.
   * @throws {ErrorReply} When Redis refuses the credentials or the database.
   */
  static async open(
    endpoint: RespEndpoint,
    onLost: (cause: unknown) => void,
    opened: (socket: RespSocket) => void,
    onPush?: (message: RespValue[]) => void,
  ): Promise<RespSocket> {
    const { hostname, port } = endpoint;
    const conn = endpoint.tls
      ? await Deno.connectTls({ hostname, port })
      : await Deno.connect({ hostname, port });
    if (!endpoint.tls) (conn as Deno.TcpConn).setNoDelay(true);
    const socket = new RespSocket(conn, onLost, onPush);
    opened(socket);
    try {
      const login: Promise<RespValue>[] = [];
      if (endpoint.password !== undefined) {
        login.push(socket.send(
          endpoint.username === undefined
            ? ["AUTH", endpoint.password]
            : ["AUTH", endpoint.username, endpoint.password],
        ));
      }
      if (endpoint.database !== 0) login.push(socket.send(["SELECT", String(endpoint.database)]));
      await Promise.all(login);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    return socket;
  }

  /** Whether commands can be sent. */
  get isOpen(): boolean {
    return this.#state === "open";
  }

  /**
   * Sends a command with the others of this turn.
   *
   * @returns Its reply.
   * @throws {ErrorReply} When Redis answers with an error.
   */
  send(args: readonly string[]): Promise<RespValue> {
    if (this.#state !== "open") {
      return Promise.reject(new Error("The connection to Redis is closed"));
    }
    this.#next.push(args);
    return this.#sent();
  }

  /** Schedules the write of the commands of this turn; returns the reply of the one just added. */
  #sent(): Promise<RespValue> {
    if (!this.#scheduled && !this.#writing) {
      this.#scheduled = true;
      writeAtTurnEnd(this.#flush);
    }
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /**
   * Sends `EVALSHA` or `EVAL` of a script with its keys and arguments, encoded
   * from them as they are.
   *
   * @returns Its reply.
   * @throws {ErrorReply} When Redis answers with an error.
   */
  sendScript(
    command: "EVALSHA" | "EVAL",
    body: string,
    keys: readonly string[],
    args: readonly string[],
  ): Promise<RespValue> {
    if (this.#state !== "open") {
      return Promise.reject(new Error("The connection to Redis is closed"));
    }
    this.#next.pushScript(command, body, keys, args);
    return this.#sent();
  }

  /** Waits for the replies of the commands sent, then closes. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === "open") {
      this.#state = "closing";
      if (this.#head < this.#waiting.length) {
        await new Promise<void>((resolve) => this.#drained = resolve);
      }
      this.#end(undefined);
    }
    await this.#reading;
  }

  /** Closes now: waiting callers reject. Idempotent. */
  destroy(): void {
    this.#end(new Error("The connection to Redis was closed"));
  }

  readonly #flush = async (): Promise<void> => {
    this.#scheduled = false;
    while (this.#next.length > 0 && this.#state !== "closed") {
      const next = this.#next;
      this.#next = this.#out;
      this.#out = next;
      this.#writing = true;
      try {
        const bytes = this.#out.view();
        for (let written = 0; written < bytes.length;) {
          written += await this.#conn.write(bytes.subarray(written));
        }
      } catch (error) {
        this.#lost(error);
      } finally {
        this.#writing = false;
        this.#out.clear();
      }
    }
  };

  async #read(): Promise<void> {
    const replies = this.#replies;
    try {
      for (;;) {
        const read = await this.#conn.read(replies.space());
        if (read === null) throw new Error("Redis closed the connection");
        replies.feed(read);
        for (let reply = replies.next(); reply !== INCOMPLETE; reply = replies.next()) {
          this.#settle(reply);
        }
      }
    } catch (error) {
      this.#lost(error);
    }
  }

  #settle(reply: RespValue): void {
    if (
      this.#onPush !== undefined && Array.isArray(reply) &&
      (reply[0] === "smessage" || reply[0] === "message")
    ) {
      return this.#onPush(reply);
    }
    const waiter = this.#waiting[this.#head];
    if (waiter === undefined) throw new Error("Redis sent a reply no command waits for");
    this.#waiting[this.#head++] = undefined!;
    if (this.#head === this.#waiting.length) {
      this.#waiting.length = this.#head = 0;
      this.#drained?.();
    } else if (this.#head >= 1024) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
    if (reply instanceof ErrorReply) waiter.reject(reply);
    else waiter.resolve(reply);
  }

  /** The connection failed: lost, unless this side was closing it. */
  #lost(cause: unknown): void {
    if (this.#state === "closed") return;
    const closing = this.#state === "closing";
    this.#end(cause instanceof Error ? cause : new Error(String(cause)));
    if (!closing) this.#onLost(cause);
  }

  /** Closes the socket once; waiting callers reject with `error`. */
  #end(error: Error | undefined): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    const waiting = this.#waiting.slice(this.#head);
    this.#waiting = [];
    this.#head = 0;
    this.#drained?.();
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
    const why = error ?? new Error("The connection to Redis was closed");
    for (const waiter of waiting) waiter.reject(why);
  }
}
