/**
 * Puts a stream of `MIB` MiB of unknown length to `TARGET` and prints, as
 * JSON, the object id and how much this process's resident memory grew at
 * most meanwhile, for tests/client/stream_put_test.ts.
 *
 * Usage: stream_put_child.ts TARGET MIB
 */
import { connect } from "../../mod.ts";
import { patternChunk } from "./pattern.ts";

const [target, mib] = Deno.args;
const CHUNK = 64 * 1024;
const chunks = Number(mib) * 16;
await using client = await connect(target);
// Warm up the paths a put takes, so that only the stream's bytes count.
await client.put(new Uint8Array(8 << 20));
const base = Deno.memoryUsage().rss;
let peak = base;
let index = 0;
const stream = new ReadableStream<Uint8Array>({
  pull(controller) {
    peak = Math.max(peak, Deno.memoryUsage().rss);
    // Run with --expose-gc: the chunks already put are garbage, not memory the put holds.
    if (index % 256 === 0) (globalThis as { gc?: () => void }).gc?.();
    if (index === chunks) controller.close();
    else controller.enqueue(patternChunk(index++, CHUNK));
  },
}, { highWaterMark: 0 });
const id = await client.put(stream);
peak = Math.max(peak, Deno.memoryUsage().rss);
console.log(JSON.stringify({ id, growth: peak - base }));
