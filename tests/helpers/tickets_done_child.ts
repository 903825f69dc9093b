/**
 * For tests/transport/http/native_get_tickets_test.ts: the native GET
 * listener sends many tickets, one after another, each done before the next
 * is handed out, while nothing collects them (pk_hg_done), as when the wait
 * for tickets done is late on a busy thread pool. Collects them all at the
 * end, prints how many, and exits 0 when it survived.
 */
import { startListener } from "./listener_start.ts";
import { loadNative } from "../../native/load.ts";

const native = loadNative();
if (native === undefined) throw new Error("Cannot load the native library");
const symbols = native.symbols;

const TICKETS = 300;
const BODY = "body";
const encoder = new TextEncoder();
const memfd = symbols.pk_memfd_create(encoder.encode("tickets\0"), 0);
if (memfd < 0) throw new Error(`Cannot make a memfd: errno ${-memfd}`);
const body = encoder.encode(BODY);
symbols.pk_pwrite_all(memfd, body, BigInt(body.length), 0n);

let handle: Deno.PointerValue = null;
const abort = new AbortController();
// The Deno server the listener hands requests to: it answers each with a ticket.
const upstream = Deno.serve(
  { hostname: "127.0.0.1", port: 0, signal: abort.signal, onListen() {} },
  () => {
    const head = encoder.encode("content-type: text/plain\r\n");
    const out = new BigUint64Array(1);
    const made = symbols.pk_hg_ticket(
      handle,
      memfd,
      BigInt(body.length),
      0n,
      BigInt(body.length),
      0,
      head,
      head.length,
      out,
    );
    if (made < 0) throw new Error(`Cannot make a ticket: errno ${-made}`);
    return new Response(null, { headers: { "packice-ticket": String(out[0]) } });
  },
);

const secret = encoder.encode("tickets-secret");
const started = startListener(symbols.pk_hg_start, upstream.addr.port, secret);
const port = started.port;
handle = started.handle;

const conn = await Deno.connect({ hostname: "127.0.0.1", port });
const decoder = new TextDecoder();
const buffer = new Uint8Array(4096);
for (let i = 0; i < TICKETS; i++) {
  await conn.write(encoder.encode("GET /v1/objects/x HTTP/1.1\r\nhost: a\r\n\r\n"));
  let answer = "";
  while (!answer.includes("\r\n\r\n") || !answer.endsWith(BODY)) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error(`The listener closed the connection at ticket ${i}: ${answer}`);
    answer += decoder.decode(buffer.subarray(0, n));
  }
  if (!answer.startsWith("HTTP/1.1 200")) throw new Error(`Not a ticket's answer: ${answer}`);
}
conn.close();
let done = 0;
const numbers = new BigUint64Array(64);
// The client can have a ticket's last byte before the listener's thread counts the ticket done.
const deadline = Date.now() + 5000;
while (done < TICKETS && Date.now() < deadline) {
  const count = symbols.pk_hg_done(handle, numbers, numbers.length);
  done += count;
  if (count < numbers.length) await new Promise((resolve) => setTimeout(resolve, 10));
}
if (symbols.pk_hg_close(handle) !== 0) throw new Error("Cannot close the listener");
abort.abort();
await upstream.finished;
symbols.pk_close(memfd);
console.log(`done ${done}`);
