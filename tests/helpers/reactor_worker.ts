/**
 * A Worker started by tests/helpers/reactor_worker_child.ts: registers an
 * always ready fd on its reactor, says so once told of it, and closes itself
 * when asked to.
 */
/// <reference lib="deno.worker" />
import { Linux } from "../../native/ffi.ts";
import { loadNative } from "../../native/load.ts";
import { Reactor } from "../../native/reactor.ts";

const native = loadNative()!;
// An eventfd is always writable.
const fd = native.symbols.pk_eventfd();
let told = 0;
Reactor.of(native).add(fd, Linux.EPOLLOUT, {
  ready: () => {
    if (++told === 3) self.postMessage("told");
  },
});
self.onmessage = () => self.close();
