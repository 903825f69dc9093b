import { setImmediate } from "node:timers";
import { check } from "./errno.ts";
import { Linux } from "./ffi.ts";
import type { Native } from "./load.ts";
import { Schedule } from "./schedule.ts";
import { SPIN_NS, SpinPolicy } from "./spin.ts";

/** Something registered with the {@link Reactor}: told when its fd is ready. */
export interface Ready {
  /**
   * Called on the JS thread with the `EPOLL*` bits that are ready. Make
   * every socket call here synchronously, without blocking, and read until
   * `EAGAIN` (or stop watching for input): the next wait starts as soon as
   * this returns. While {@link Reactor.pollingHere}, reading one message is
   * enough: the JS thread waits again right after, and epoll reports a fd
   * that is still readable again.
   */
  ready(events: number): void;
  /**
   * Where this handler goes, with the others of a run that share it, when a
   * wait on the JS thread finds them readable (`EPOLLIN` alone) together:
   * one call for the run instead of a `ready` each. Read at each wait;
   * undefined for a handler told alone.
   */
  readonly together?: Together | undefined;
}

/** Handlers told of their readiness in one call; see {@link Ready.together}. */
export interface Together {
  /**
   * Handles the first `count` of `handlers`, found readable together by a
   * wait on the JS thread, in their order, as a `ready(EPOLLIN)` each would.
   * The array is the reactor's, reused: keep no reference to it.
   */
  readyAll(handlers: readonly Ready[], count: number): void;
}

/** How many events one wait reports. */
const MAX_EVENTS = 256;

/**
 * How long the JS thread may keep the wait, in milliseconds, before it hands
 * it back so that the event loop turns: the most that waiting here delays
 * timers, HTTP requests and other I/O of the process.
 */
const LEND_BUDGET_MS = 1;
const LEND_BUDGET_NS = BigInt(LEND_BUDGET_MS * 1_000_000);
/** A wait that ends with the budget after this long found the sockets idle, in nanoseconds. */
const BUSY_NS = 50_000;

/** {@link SPIN_NS} as the poll takes it: not a BigInt made per wait. */
const SPIN_BIG = BigInt(SPIN_NS);

/** The callback the native thread calls with the number of ready entries. */
const READY = { parameters: ["i32"], result: "void" } as const;

/**
 * Whether this runtime is a Worker's: Deno frees its callbacks when it ends
 * and tells it nothing before, so its reactor has no thread calling into it.
 */
const IN_WORKER = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope ===
  "function";

/** One run of the native reactor, from its start to its stop. */
interface Running {
  readonly handle: NonNullable<Deno.PointerValue>;
  readonly epfd: number;
  /** The callback of its thread; undefined for a run whose waits are calls on the pool. */
  readonly callback: Deno.UnsafeCallback<typeof READY> | undefined;
  /** The reactor's memory holding the ready entries, detached when it stops. */
  readonly memory: ArrayBuffer;
  /** Token and events of each ready entry. */
  readonly slots: Uint32Array;
  /** Without a thread: the last wait started, settled once it has returned and been handled. */
  waiting: Promise<void>;
  /**
   * Without a thread: this runtime's reader of the pipe whose write end the
   * native death watch waits on (see {@link Reactor.#tie}); undefined when
   * it could not be opened.
   */
  readonly tie: Deno.FsFile | undefined;
}

/** Whether this runtime has said that its Worker's end cannot be watched. */
let untiedSaid = false;

/**
 * The one event loop of this process's Unix sockets: a native thread waits
 * in `epoll_wait` and hands the ready fds to the JS thread through a
 * thread-safe callback, where every socket call is made synchronously.
 * Servers and client connections all share it, so a process with a thousand
 * connections uses one thread, and never parks a call per connection on
 * Deno's blocking pool (it has only 32 threads).
 *
 * The thread runs while anything is registered; when the last registration
 * goes it is stopped, and its epoll closed, before `remove()` settles. When
 * the runtime ends first (a test module's, at `unload`), the reactor is
 * abandoned to the native library: the thread calls into it no more, and
 * frees it. A Worker's runtime is told nothing before Deno frees its
 * callbacks: there, one call on the blocking pool waits instead of the
 * thread, and returns what is ready: a task on the pool per hop. And the
 * native side learns of its end as Deno closes the runtime's resources, one
 * of which is a pipe's reader: it then closes the sockets registered, so
 * that a daemon drops the leases of the Worker's clients, and frees the
 * reactor.
 *
 * Each hop from the native thread into JS wakes two threads, slow on a VM,
 * and so does a turn of the event loop. A caller that has just sent
 * something whose answer should follow at once can instead have the JS
 * thread wait itself, once the work under way has run: see
 * {@link Reactor.waitSoon}. When that happens is the {@link Schedule}'s.
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
  /** Whether a wait was asked for since the last one. */
  #wanted = false;
  #waitScheduled = false;
  /** Whether the JS thread keeps the wait, while the native thread parks. */
  #lent = false;
  #pollingHere = false;
  #reclaimQueued = false;
  readonly #polled = new Uint32Array(MAX_EVENTS * 2);
  /** The run of handlers sharing a {@link Together}, of the wait being handed out. */
  readonly #run: Ready[] = [];
  readonly #waited = new BigInt64Array(2);
  /** The same memory as 32-bit words: read without making a BigInt per wait. */
  readonly #waitedWords = new Uint32Array(this.#waited.buffer);
  readonly #spin = new SpinPolicy();
  readonly #waitNow = () => this.#wait();
  /** When messages leave and waits start: the process's scheduling policy. */
  readonly schedule: Schedule = new Schedule();
  /** The stop of the previous run, which a new run waits for. */
  #stopped: Promise<void> = Promise.resolve();

  private constructor(native: Native) {
    this.#native = native;
    globalThis.addEventListener("unload", () => this.#handOver());
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
      check(this.#native.symbols.pk_reactor_add(running.handle, fd, events, token), "epoll_ctl");
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
    this.#native.symbols.pk_reactor_remove(this.#running.handle, fd);
    if (this.#handlers.size === 0) this.#stop();
    return this.#handlers.size === 0 ? this.#stopped : Promise.resolve();
  }

  /**
   * Has the JS thread wait itself for registered fds to become ready, once
   * the work under way has run (see `Schedule.busy`), and hand what is
   * ready to the handlers as the native thread would. For right after
   * sending a request (or a reply) whose answer (or the next request)
   * usually comes back within microseconds: it saves the hops through the
   * native thread and the event loop. A wait lasts until something is ready
   * or the lend's budget of {@link LEND_BUDGET_MS} runs out; then the native
   * thread takes the wait back, and the event loop turns at least that often.
   */
  waitSoon(): void {
    if (this.#running === undefined) return;
    this.#wanted = true;
    this.#scheduleWait();
  }

  /** Runs {@link Reactor.#wait} once the work under way has run. */
  #scheduleWait(): void {
    if (this.#waitScheduled) return;
    this.#waitScheduled = true;
    this.schedule.afterWork(this.#waitNow);
  }

  /**
   * Whether the handlers now called were found ready by a wait on the JS
   * thread, which waits again once they and the work they start have run.
   */
  get pollingHere(): boolean {
    return this.#pollingHere;
  }

  /**
   * Waits as asked since the last wait, or hands the wait back to the native
   * thread when nobody asked.
   */
  #wait(): void {
    this.#waitScheduled = false;
    const running = this.#running;
    if (running === undefined) return;
    const symbols = this.#native.symbols;
    if (!this.#wanted) {
      this.#reclaimWhenIdle(running);
      return;
    }
    if (!this.#lent) this.#lend(running);
    this.#wanted = false;
    const spin = this.#spin.next();
    const count = symbols.pk_reactor_poll(
      running.handle,
      this.#polled,
      MAX_EVENTS,
      spin === 0 ? 0n : spin === SPIN_NS ? SPIN_BIG : BigInt(spin),
      this.#waited,
    );
    // Both values are >= 0; little-endian words.
    const words = this.#waitedWords;
    const waited = words[0]! + words[1]! * 2 ** 32;
    this.#spin.record(spin, count > 0, waited, (words[2]! | words[3]!) !== 0);
    if (count < 0) {
      this.#reclaim(running);
      console.error(`Packice: waiting on Unix sockets failed: errno ${-count}`);
      return;
    }
    if (count === 0 && waited >= BUSY_NS) {
      // Nothing came for a while: the native thread waits from here on.
      this.#reclaim(running);
      return;
    }
    if (count === 0) {
      // The budget ran out while the JS thread was busy, not waiting: let
      // the event loop turn (timers, other I/O), then wait again.
      this.#wanted = true;
      this.#waitScheduled = true;
      setImmediate(() => {
        this.#waitScheduled = false;
        if (this.#running !== running || !this.#lent) return;
        this.#lend(running);
        this.#scheduleWait();
      });
      return;
    }
    this.#pollingHere = true;
    try {
      this.#ready(this.#polled, count, true);
    } finally {
      this.#pollingHere = false;
    }
    // Once the handlers' work has run: another wait if one is asked for, else the end of lending.
    this.#scheduleWait();
  }

  /** Takes the wait from the native thread, or renews its budget. */
  #lend(running: Running): void {
    check(this.#native.symbols.pk_reactor_lend(running.handle, LEND_BUDGET_NS), "reactor lend");
    this.#lent = true;
  }

  /**
   * Hands the wait back to the native thread when the event loop turns,
   * unless a wait is asked for before then: a client that has its answer
   * usually sends its next request a few microtasks later, and lending the
   * wait anew each time would cost two timer changes and a wake-up.
   */
  #reclaimWhenIdle(running: Running): void {
    if (!this.#lent || this.#reclaimQueued) return;
    this.#reclaimQueued = true;
    setImmediate(() => {
      this.#reclaimQueued = false;
      if (!this.#waitScheduled && !this.#wanted) this.#reclaim(running);
    });
  }

  /** Hands the wait back to the native thread. */
  #reclaim(running: Running): void {
    if (!this.#lent || this.#running !== running) return;
    this.#lent = false;
    this.#native.symbols.pk_reactor_reclaim(running.handle);
  }

  #start(): Running {
    const symbols = this.#native.symbols;
    // Events of an earlier run that is stopping are dropped: their fds are gone.
    let current: Running | undefined;
    const callback = IN_WORKER ? undefined : Deno.UnsafeCallback.threadSafe(READY, (count) => {
      if (current !== undefined && current === this.#running) this.#ready(current.slots, count);
    });
    const handle = new BigUint64Array(1);
    const slots = new BigUint64Array(1);
    let epfd: number;
    try {
      epfd = check(
        symbols.pk_reactor_start(callback?.pointer ?? null, MAX_EVENTS, handle, slots),
        "reactor start",
      );
    } catch (error) {
      callback?.close();
      throw error;
    }
    const memory = Deno.UnsafePointerView.getArrayBuffer(
      Deno.UnsafePointer.create(slots[0]!)!,
      MAX_EVENTS * 2 * Uint32Array.BYTES_PER_ELEMENT,
    );
    const pointer = Deno.UnsafePointer.create(handle[0]!)!;
    const running: Running = {
      handle: pointer,
      epfd,
      callback,
      memory,
      slots: new Uint32Array(memory),
      waiting: Promise.resolve(),
      tie: callback === undefined ? this.#tie(pointer) : undefined,
    };
    this.#running = current = running;
    if (callback === undefined) this.#next(running);
    return running;
  }

  /**
   * Ties a run without a thread to this runtime, so that the native side
   * sees it end: a Worker's is told nothing first, not even when it is
   * terminated. The native side makes a pipe; this runtime reopens its read
   * end through `/proc/self/fd` (which needs read access there) as a file of
   * its own, and the native one is closed. Deno closes a runtime's files
   * when it tears it down, and the death watch, seeing the pipe without a
   * reader, closes the sockets registered and frees the reactor. Without it
   * they stay open until the process exits, said once in a debug log.
   *
   * @returns This runtime's reader, to close once the run has been closed.
   */
  #tie(handle: NonNullable<Deno.PointerValue>): Deno.FsFile | undefined {
    const symbols = this.#native.symbols;
    const reader = symbols.pk_reactor_tie(handle);
    let why = `pipe: errno ${-reader}`;
    if (reader >= 0) {
      const path = `/proc/self/fd/${reader}`;
      let file: Deno.FsFile | undefined;
      try {
        // Asked first: a permission not granted is never prompted for.
        why = `no read access to ${path}`;
        if (Deno.permissions.querySync({ name: "read", path }).state === "granted") {
          file = Deno.openSync(path);
        }
      } catch (error) {
        why = error instanceof Error ? error.message : String(error);
      }
      if (file === undefined) {
        symbols.pk_close(reader);
      } else {
        const watched = symbols.pk_reactor_watch(handle, reader);
        if (watched >= 0) return file;
        file.close();
        why = `death watch: errno ${-watched}`;
      }
    }
    if (!untiedSaid) {
      untiedSaid = true;
      console.debug(
        `Packice: this Worker's Unix socket connections stay open until the process exits if it ends without closing its clients (${why})`,
      );
    }
    return undefined;
  }

  /** Starts the next wait of a run without a thread; its result is handled when it returns. */
  #next(running: Running): void {
    const symbols = this.#native.symbols;
    symbols.pk_reactor_will_wait(running.handle);
    running.waiting = symbols.pk_reactor_wait_nb(running.handle).then((count) => {
      if (running !== this.#running) return;
      this.#ready(running.slots, count);
      if (count > 0 && running === this.#running) this.#next(running);
    });
  }

  #stop(): void {
    const running = this.#running;
    if (running === undefined) return;
    this.#running = undefined;
    this.#lent = false;
    const symbols = this.#native.symbols;
    check(symbols.pk_reactor_stop(running.handle), "reactor stop");
    const previous = this.#stopped;
    this.#stopped = (async () => {
      await previous;
      if (running.callback !== undefined) {
        // The thread may be waiting for one last callback: join off this thread.
        check(await symbols.pk_reactor_join_nb(running.handle), "reactor join");
        running.callback.close();
      } else {
        // The wait under way returns at once, stopped.
        await running.waiting;
        symbols.pk_reactor_close(running.handle);
        // Only once the run is out of the death watch, which would take this for the runtime's end.
        running.tie?.close();
      }
      running.memory.transfer(0);
    })();
  }

  /**
   * As this runtime ends, abandons the running reactor to the native
   * library: it calls into the runtime no more, and frees itself. Runs
   * stopping are freed as they would be.
   */
  #handOver(): void {
    const running = this.#running;
    if (running === undefined) return;
    this.#running = undefined;
    this.#lent = false;
    this.#native.symbols.pk_reactor_abandon(running.handle);
  }

  /**
   * Hands the ready entries to their handlers, in their order; on the JS
   * thread's own wait (`here`), each run of readable handlers sharing a
   * {@link Together} in one call.
   */
  #ready(slots: Uint32Array, count: number, here = false): void {
    if (count < 0) {
      console.error(`Packice: the Unix socket reactor failed: errno ${-count}`);
      return;
    }
    const run = this.#run;
    let group: Together | undefined;
    for (let i = 0; i < count; i++) {
      const handler = this.#handlers.get(slots[i * 2]!);
      if (handler === undefined) continue;
      const events = slots[i * 2 + 1]!;
      const together = here && events === Linux.EPOLLIN ? handler.together : undefined;
      if (together !== group && run.length > 0) this.#readyAll(group!);
      group = together;
      if (together !== undefined) {
        run.push(handler);
        continue;
      }
      try {
        handler.ready(events);
      } catch (error) {
        console.error("Packice: a Unix socket handler failed:", error);
      }
    }
    if (run.length > 0) this.#readyAll(group!);
  }

  /** Hands the run gathered to `group` (a lone handler, to itself), and empties it. */
  #readyAll(group: Together): void {
    const run = this.#run;
    try {
      if (run.length === 1) run[0]!.ready(Linux.EPOLLIN);
      else group.readyAll(run, run.length);
    } catch (error) {
      console.error("Packice: a Unix socket handler failed:", error);
    } finally {
      run.length = 0;
    }
  }
}
