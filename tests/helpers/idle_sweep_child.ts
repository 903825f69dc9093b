/**
 * Drives the native GET listener of a library built with a sweep of idle
 * connections every second and no idle time allowed (the library's path is
 * the argument), for tests/transport/http/native_get_sweep_test.ts: half the
 * clients send a byte each every few milliseconds, so that the sweep closes
 * connections whose events wait in the same batch. Prints how many
 * connections the listener closed, and exits 0 when it survived.
 */
import { startListener } from "./listener_start.ts";
const library = Deno.dlopen(Deno.args[0]!, {
  pk_hg_start: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "i32",
      "buffer",
      "u32",
      "buffer",
      "u32",
      "pointer",
      "u64",
      "buffer",
    ],
    result: "i32",
  },
  pk_hg_close: { parameters: ["pointer"], result: "i32" },
});
const { pk_hg_start, pk_hg_close } = library.symbols;

const CLIENTS = 16;
/**
 * Every other client sends a byte this rarely: idle past a sweep whatever the
 * load, so that some connection is swept even when the listener's thread,
 * starved on a busy machine, finds every other client's byte waiting at each
 * sweep (which then sweeps none of them).
 */
const SLOW_MS = 1500;
const RUN_MS = 3500;
const encoder = new TextEncoder();
// Port 1 is never reached: no request head is ever whole.
const { port, handle } = startListener(pk_hg_start, 1);

let closed = 0;
const end = performance.now() + RUN_MS;
const byte = encoder.encode("G");
await Promise.all(Array.from({ length: CLIENTS }, async (_, index) => {
  await new Promise((go) => setTimeout(go, index));
  while (performance.now() < end) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      while (performance.now() < end) {
        await conn.write(byte);
        await new Promise((go) => setTimeout(go, index % 2 === 0 ? 3 : SLOW_MS));
      }
    } catch {
      closed++;
    } finally {
      conn.close();
    }
  }
}));
if (pk_hg_close(handle) !== 0) throw new Error("Cannot close the listener");
library.close();
console.log(`closed ${closed}`);
