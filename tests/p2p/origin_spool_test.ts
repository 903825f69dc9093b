/**
 * The spool of an origin body of no stated length, driven directly: what it
 * hands out to be sent (its file, the body's length) while the body arrives
 * and once it ended.
 */
import { assertEquals } from "../helpers/assert.ts";
import { pattern } from "../helpers/cluster.ts";
import { eventually } from "../helpers/eventually.ts";
import { originCounts } from "../../p2p/origin/origin_counts.ts";
import { Spool, SPOOL_PIECE } from "../../p2p/origin/spool.ts";

/** A body that arrives as the test pushes it: a byte stream, as `fetch` gives. */
function arriving(): { response: Response; push(bytes: Uint8Array): void; end(): void } {
  let controller!: ReadableByteStreamController;
  const body = new ReadableStream({ type: "bytes", start: (c) => void (controller = c) });
  return {
    response: new Response(body),
    push: (bytes) => controller.enqueue(bytes.slice()),
    end: () => controller.close(),
  };
}

Deno.test("a spool hands out its file with no length while the body arrives, and the body's length once it ended", async () => {
  using spool = await Spool.open();
  const body = pattern(SPOOL_PIECE + 1000, 51);
  const { response, push, end } = arriving();
  const trip = {
    url: "http://origin.test/a",
    headers: new Headers(),
    counts: originCounts(),
    signal: new AbortController().signal,
  };
  const taking = spool.take(trip, response, 1 << 30);
  push(body.subarray(0, SPOOL_PIECE));
  await eventually(() => spool.has(0), "the first piece is spooled");
  assertEquals(spool.file(0, SPOOL_PIECE)?.size, undefined);
  assertEquals(spool.file(0, SPOOL_PIECE)?.end, SPOOL_PIECE);
  push(body.subarray(SPOOL_PIECE));
  end();
  await taking;
  assertEquals(spool.file(0, SPOOL_PIECE)?.size, body.length);
  // A range past the end is cut there.
  assertEquals(spool.file(SPOOL_PIECE, 2 * SPOOL_PIECE)?.end, body.length);
});
