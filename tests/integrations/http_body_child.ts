/**
 * A client on "another host": reads one big object over a daemon's HTTP
 * address through a Web Cache body, through `handle.stream()` of a lazy
 * get, and as the body of `client.fetch` of a URL, checks its bytes, and prints as JSON lines how far its resident
 * memory peaked above where each read started, and how long it waited for
 * its first chunk and for all of them (checking the bytes not counted).
 *
 * A first whole read brings the runtime to its working size (the
 * allocator's thread arenas and V8's heap grow by some 70 MiB on the first
 * big read, whatever its size, and stay), and garbage is collected before
 * each read and every 16 MiB of it (run with `--v8-flags=--expose-gc`), so a
 * figure is what that read holds, not chunks read and dropped that V8 has
 * yet to collect (it lets some 64 MiB of array buffers pile up).
 *
 * Usage: http_body_child.ts URL TOKEN CACHED_URL OBJECT_ID ORIGIN_URL
 */
import { connect } from "../../mod.ts";
import { PackiceCacheStorage } from "../../integrations/mod.ts";
import { patternByte } from "./http_body_pattern.ts";

const [url, token, cached, id, origin] = Deno.args as [string, string, string, string, string];
await using client = await connect(url, { token });
const cache = await new PackiceCacheStorage(client).open("weights");
const gc = (globalThis as unknown as { gc: () => void }).gc;

/** Kilobytes of a line of /proc/self/status. */
function statusKiB(field: string): number {
  const line = Deno.readTextFileSync("/proc/self/status").split("\n")
    .find((text) => text.startsWith(`${field}:`))!;
  return Number(/(\d+)/.exec(line)![1]);
}

async function measure(how: string, body: () => Promise<ReadableStream<Uint8Array>>) {
  gc();
  // V8 frees collected array buffers on a thread of its own: let it.
  await new Promise((resolve) => setTimeout(resolve, 200));
  // Writing 5 to clear_refs resets the peak (VmHWM) to the resident size now.
  Deno.writeTextFileSync("/proc/self/clear_refs", "5");
  const before = statusKiB("VmRSS");
  let firstMs: number | undefined;
  let firstPeakKiB = 0;
  let at = 0;
  let wrong = -1;
  // The wait for the body (a match, a get) counts as the first chunk's.
  const opened = performance.now();
  const reader = (await body()).getReader();
  let waitedMs = performance.now() - opened;
  for (;;) {
    const asked = performance.now();
    const { done, value: chunk } = await reader.read();
    waitedMs += performance.now() - asked;
    if (done) break;
    if (firstMs === undefined) {
      firstMs = waitedMs;
      firstPeakKiB = statusKiB("VmHWM") - before;
    }
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== patternByte(at + i) && wrong < 0) wrong = at + i;
    }
    if ((at >>> 24) !== ((at + chunk.length) >>> 24)) gc();
    at += chunk.length;
  }
  console.log(JSON.stringify({
    how,
    read: at,
    wrong,
    firstMs,
    waitedMs,
    firstPeakMiB: firstPeakKiB / 1024,
    peakMiB: (statusKiB("VmHWM") - before) / 1024,
  }));
}

const cacheBody = async () => (await cache.match(cached))!.body!;
const fetchBody = async () => (await client.fetch(origin)).body!;
// The warm-up reads; the first fetch has the daemon download the URL.
for (const body of [cacheBody, fetchBody]) {
  for await (const _ of await body()) {
    // Read only.
  }
}
await measure("cache", cacheBody);
await measure("stream", async () => (await client.get(id, { lazy: true })).stream());
await measure("fetch", fetchBody);
