import { check } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import type { Native } from "../../native/load.ts";

/** Something registered with the {@link Reactor}: told when its fd is ready. */
export interface Ready {
  /**
   * Called on the JS thread with the `EPOLL*` bits that are ready. Make
   * every socket call here synchronously, without blocking, and read until
   * `EAGAIN` (or stop watching for input): the next wait starts as soon as
   * this returns.
   */
  ready(events: number): void;
}

/** How many events one wait reports. */
const MAX_EVENTS = 256;

/** The callback the native thread calls with the number of ready entries. */
const READY = { parameters: ["i32"], result: "void" } as const;

/** One run of the native reactor thread. */
interface Running {
  readonly handle: NonNullable<Deno.PointerValue>;
  readonly epfd: number;
  readonly callback: Deno.UnsafeCallback<typeof READY>;
  /** The thread's memory holding the ready entries, detached when it stops. */
  readonly memory: ArrayBuffer;
  /** Token and events of each ready entry. */
  readonly slots: Uint32Array;
}

/**
 * The one event loop of this process's Unix sockets: a native thread waits
 * in `epoll_wait` and hands the ready fds to the JS thread through a
 * thread-safe callback, where every socket call is made synchronously.
 * Servers and client connections all share it, so a process with a thousand
 * connections uses one thread, and never parks a call per connection on
 * Deno's blocking pool (it has only 32 threads).
 *
 * The thread runs while anything is registered; when the last registration
 * goes it is stopped, and its epoll closed, before `remove()` settles.
 */
export class Reactor {
  static #shared: Reactor | undefined;

  /**
   * The process's reactor.
   *
   * @param native The native library.
   * @returns The shared reactor.
   */
  static of(native: Native): Reactor {
    Reactor.#shared ??= new Reactor(native);
    return Reactor.#shared;
  }

  readonly #native: Native;
  readonly #handlers = new Map<number, Ready>();
  #nextToken = 1;
  #running: Running | undefined;
  /** The stop of the previous run, which a new run waits for. */
  #stopped: Promise<void> = Promise.resolve();

  private constructor(native: Native) {
    this.#native = native;
  }

  /**
   * Watches a fd the caller has just made and hands over: if it cannot be
   * watched, it is closed before the error is thrown.
   *
   * @param fd A new non-blocking fd.
   * @param events `EPOLL*` bits.
   * @param handler Told when the fd is ready.
   * @returns The registration's token.
   */
  adopt(fd: number, events: number, handler: Ready): number {
    try {
      return this.add(fd, events, handler);
    } catch (error) {
      this.#native.symbols.pk_close(fd);
      throw error;
    }
  }

  /**
   * Watches `fd` for `events`, starting the thread if it is not running.
   *
   * @param fd A non-blocking fd.
   * @param events `EPOLL*` bits.
   * @param handler Told when the fd is ready.
   * @returns The registration's token, for {@link Reactor.modify} and {@link Reactor.remove}.
   */
  add(fd: number, events: number, handler: Ready): number {
    const running = this.#running ?? this.#start();
    const token = this.#nextToken;
    this.#nextToken = token === 0xffff_ffff ? 1 : token + 1;
    try {
      check(
        this.#native.symbols.pk_epoll_ctl(
          running.epfd,
          Linux.EPOLL_CTL_ADD,
          fd,
          events,
          BigInt(token),
        ),
        "epoll_ctl",
      );
    } catch (error) {
      if (this.#handlers.size === 0) this.#stop();
      throw error;
    }
    this.#handlers.set(token, handler);
    return token;
  }

  /** Changes the events watched on a registered fd. */
  modify(fd: number, token: number, events: number): void {
    if (!this.#handlers.has(token) || this.#running === undefined) return;
    check(
      this.#native.symbols.pk_epoll_ctl(
        this.#running.epfd,
        Linux.EPOLL_CTL_MOD,
        fd,
        events,
        BigInt(token),
      ),
      "epoll_ctl",
    );
  }

  /**
   * Stops watching `fd`; call before closing it. When nothing is left
   * registered the thread stops, and the returned promise settles once it has.
   */
  remove(fd: number, token: number): Promise<void> {
    if (!this.#handlers.delete(token) || this.#running === undefined) return Promise.resolve();
    this.#native.symbols.pk_epoll_ctl(this.#running.epfd, Linux.EPOLL_CTL_DEL, fd, 0, 0n);
    if (this.#handlers.size === 0) this.#stop();
    return this.#handlers.size === 0 ? this.#stopped : Promise.resolve();
  }

  #start(): Running {
    const symbols = this.#native.symbols;
    // Events of an earlier run that is stopping are dropped: their fds are gone.
    let current: Running | undefined;
    const callback = Deno.UnsafeCallback.threadSafe(READY, (count) => {
      if (current !== undefined && current === this.#running) this.#ready(current.slots, count);
    });
    const handle = new BigUint64Array(1);
    const slots = new BigUint64Array(1);
    let epfd: number;
    try {
      epfd = check(
        symbols.pk_reactor_start(callback.pointer, MAX_EVENTS, handle, slots),
        "reactor start",
      );
    } catch (error) {
      callback.close();
      throw error;
    }
    const memory = Deno.UnsafePointerView.getArrayBuffer(
      Deno.UnsafePointer.create(slots[0]!)!,
      MAX_EVENTS * 2 * Uint32Array.BYTES_PER_ELEMENT,
    );
    const running: Running = {
      handle: Deno.UnsafePointer.create(handle[0]!)!,
      epfd,
      callback,
      memory,
      slots: new Uint32Array(memory),
    };
    this.#running = current = running;
    return running;
  }

  #stop(): void {
    const running = this.#running;
    if (running === undefined) return;
    this.#running = undefined;
    const symbols = this.#native.symbols;
    check(symbols.pk_reactor_stop(running.handle), "reactor stop");
    const previous = this.#stopped;
    this.#stopped = (async () => {
      await previous;
      // The thread may be waiting for one last callback: join off this thread.
      check(await symbols.pk_reactor_join_nb(running.handle), "reactor join");
      running.memory.transfer(0);
      running.callback.close();
    })();
  }

  #ready(slots: Uint32Array, count: number): void {
    if (count < 0) {
      console.error(`Packice: the Unix socket reactor failed: errno ${-count}`);
      return;
    }
    for (let i = 0; i < count; i++) {
      const handler = this.#handlers.get(slots[i * 2]!);
      if (handler === undefined) continue;
      try {
        handler.ready(slots[i * 2 + 1]!);
      } catch (error) {
        console.error("Packice: a Unix socket handler failed:", error);
      }
    }
  }
}
