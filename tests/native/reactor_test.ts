/**
 * The reactor's wait on the JS thread (`Reactor.waitSoon`): it delivers
 * messages without the event loop turning, hands the wait back to the
 * native thread when its budget runs out, and never keeps the event loop from
 * turning for long.
 */
import { Errno } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import type { Native } from "../../native/load.ts";
import { Reactor } from "../../native/reactor.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { openNative } from "../helpers/native.ts";

const native = openNative();

/** A connected pair of non-blocking sockets whose second end is watched by the reactor. */
class Pair {
  readonly native: Native;
  readonly reactor: Reactor;
  readonly dir: string;
  readonly near: number;
  readonly far: number;
  readonly token: number;
  readonly received: number[] = [];
  readonly #buffer = new Uint8Array(64);
  readonly #fds = new Int32Array(4);
  readonly #count = new Int32Array(1);
  readonly #flags = new Int32Array(1);
  onMessage: (() => void) | undefined;

  constructor(native: Native) {
    const { symbols } = native;
    this.native = native;
    this.reactor = Reactor.of(native);
    this.dir = Deno.makeTempDirSync({ prefix: "packice-reactor-" });
    const path = new TextEncoder().encode(`${this.dir}/s.sock\0`);
    const listener = symbols.pk_uds_listen(path, 1);
    this.near = symbols.pk_uds_connect(path);
    this.far = symbols.pk_accept(listener);
    symbols.pk_close(listener);
    assert(this.near >= 0 && this.far >= 0, "socket pair");
    this.token = this.reactor.add(this.far, Linux.EPOLLIN, { ready: () => this.#read() });
  }

  /** Sends one byte from the near end. */
  send(value: number): void {
    const sent = this.native.symbols.pk_sendmsg(this.near, Uint8Array.of(value), 1n, null, 0);
    assertEquals(Number(sent), 1);
  }

  #read(): void {
    const { symbols } = this.native;
    for (;;) {
      const n = Number(
        symbols.pk_recvmsg(this.far, this.#buffer, 64n, this.#fds, 4, this.#count, this.#flags),
      );
      if (n === -Errno.EAGAIN || n <= 0) return;
      this.received.push(this.#buffer[0]!);
      this.onMessage?.();
    }
  }

  async close(): Promise<void> {
    const removed = this.reactor.remove(this.far, this.token);
    this.native.symbols.pk_close(this.far);
    this.native.symbols.pk_close(this.near);
    await removed;
    Deno.removeSync(this.dir, { recursive: true });
  }
}

/** Resolves after the microtasks queued before it, without the event loop turning. */
function microtask(): Promise<void> {
  return new Promise((resolve) => queueMicrotask(resolve));
}

Deno.test({
  name: "Reactor.waitSoon delivers a message on the JS thread before the event loop turns",
  ignore: native === undefined,
  async fn() {
    const pair = new Pair(native!);
    try {
      let turned = false;
      setTimeout(() => turned = true, 0);
      pair.send(7);
      pair.reactor.waitSoon();
      await microtask();
      assertEquals(pair.received, [7]);
      assert(!turned, "the message came through the event loop");
    } finally {
      await pair.close();
    }
  },
});

Deno.test({
  name:
    "Reactor.waitSoon hands the wait back when its budget runs out: later messages still arrive",
  ignore: native === undefined,
  async fn() {
    const pair = new Pair(native!);
    try {
      pair.reactor.waitSoon();
      await microtask();
      assertEquals(pair.received, []);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const arrived = new Promise<void>((resolve) => pair.onMessage = resolve);
      pair.send(9);
      await arrived;
      assertEquals(pair.received, [9]);
    } finally {
      await pair.close();
    }
  },
});

Deno.test({
  name: "Reactor.waitSoon lets the event loop turn during an endless exchange of messages",
  ignore: native === undefined,
  async fn() {
    const pair = new Pair(native!);
    try {
      // Each message received sends the next one a microtask later, as a
      // server replies, and waits for it on the JS thread: a chain of
      // microtasks that would never end by itself.
      const stopAt = performance.now() + 2000;
      let stoppedAt = 0;
      const ended = new Promise<void>((resolve) => {
        pair.onMessage = () => {
          if (performance.now() < stopAt) {
            queueMicrotask(() => {
              pair.send(1);
              pair.reactor.waitSoon();
            });
          } else if (stoppedAt === 0) {
            stoppedAt = performance.now();
            resolve();
          }
        };
      });
      pair.send(1);
      pair.reactor.waitSoon();
      const timerAt = await new Promise<number>((resolve) =>
        setTimeout(() => resolve(performance.now()), 5)
      );
      const exchanged = pair.received.length;
      await ended;
      assert(exchanged > 10, `only ${exchanged} messages before the timer`);
      assert(timerAt < stoppedAt - 1000, "the timer waited for the exchange to end");
    } finally {
      await pair.close();
    }
  },
});
