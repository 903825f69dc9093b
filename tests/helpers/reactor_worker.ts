/**
 * A Worker started by tests/helpers/reactor_worker_child.ts: its reactor is
 * told of an always ready fd, lets go of it (its stop), is told of another,
 * and keeps that one; the Worker says so, and closes itself when asked to.
 */
/// <reference lib="deno.worker" />
import { Linux } from "../../native/ffi.ts";
import { loadNative } from "../../native/load.ts";
import { Reactor } from "../../native/reactor.ts";

const native = loadNative()!;
const reactor = Reactor.of(native);

/** Registers an always ready fd; resolves with its token once told of it three times. */
function toldThrice(fd: number): Promise<number> {
  const { promise, resolve } = Promise.withResolvers<number>();
  let told = 0;
  // An eventfd is always writable.
  const token = reactor.add(fd, Linux.EPOLLOUT, {
    ready: () => {
      if (++told === 3) resolve(token);
    },
  });
  return promise;
}

const first = native.symbols.pk_eventfd();
await reactor.remove(first, await toldThrice(first));
native.symbols.pk_close(first);
await toldThrice(native.symbols.pk_eventfd());
self.onmessage = () => self.close();
self.postMessage("told");
