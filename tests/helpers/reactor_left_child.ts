/**
 * Run by tests/native/reactor_teardown_test.ts with `deno test --parallel`,
 * beside tests/helpers/outlasting_child.ts: a module that ends with a
 * registration left on its reactor, whose fd is always ready, so that the
 * reactor finds it ready again and again after the module's runtime has
 * gone.
 */
import { Linux } from "../../native/ffi.ts";
import { loadNative } from "../../native/load.ts";
import { Reactor } from "../../native/reactor.ts";

Deno.test("a module ends with a registration left on its reactor", async () => {
  const native = loadNative()!;
  // An eventfd is always writable.
  const fd = native.symbols.pk_eventfd();
  let told = 0;
  Reactor.of(native).add(fd, Linux.EPOLLOUT, { ready: () => void told++ });
  while (told < 3) await new Promise((later) => setTimeout(later, 1));
});
