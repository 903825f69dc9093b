/**
 * The spool of an origin body of no stated length, driven directly: what it
 * hands out to be sent (its file, the body's length) while the body arrives
 * and once it ended, and what a reset (another version) does to ranges
 * handed out before it, a piece dropped and put again in one version, and a
 * downloader's digest of the other algorithm.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { eventually } from "../helpers/eventually.ts";
import { originCounts } from "../../p2p/origin/origin_counts.ts";
import { pieceDigest } from "../../p2p/piece_digest.ts";
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
  using spool = Spool.open();
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

/** Reads `file` from its start until `target` is full. */
async function readFull(file: Deno.FsFile, target: Uint8Array): Promise<void> {
  for (let done = 0; done < target.length;) {
    const read = await file.read(target.subarray(done));
    if (read === null) throw new Error(`The file ended after ${done} bytes`);
    done += read;
  }
}

Deno.test("a spool range handed out before a reset keeps the bytes of its version, never the next one's", async () => {
  using spool = Spool.open();
  const old = pattern(SPOOL_PIECE, 52);
  const next = pattern(SPOOL_PIECE, 53);
  await spool.put(0, old, "old");
  const handed = spool.file(0, SPOOL_PIECE);
  assert(handed !== undefined, "the file of a piece held");
  // As the native GET listener takes a ticket's file (pk_hg_ticket): a descriptor of its own,
  // from which it sends the range later.
  using sending = await Deno.open(`/proc/self/fd/${handed.fd}`);
  const reading = spool.read(0, SPOOL_PIECE);
  spool.reset(undefined);
  await spool.put(0, next, "next");
  const sent = new Uint8Array(SPOOL_PIECE);
  await readFull(sending, sent);
  assert(sameBytes(sent, old), "the listener's range is the old version's");
  assert(sameBytes((await reading)!, old), "a read begun before the reset is the old version's");
  assert(sameBytes((await spool.read(0, SPOOL_PIECE))!, next), "the new version is read now");
});

Deno.test("a spool piece on its way in when the spool is reset is not held after it", async () => {
  using spool = Spool.open();
  const putting = spool.put(0, pattern(SPOOL_PIECE, 54), "old");
  spool.reset(undefined);
  await putting;
  assertEquals(spool.has(0), false);
  assertEquals(spool.file(0, SPOOL_PIECE), undefined);
});

Deno.test("a spool piece dropped and put again in one version leaves a range handed out before with the old bytes", async () => {
  using spool = Spool.open();
  const old = pattern(SPOOL_PIECE, 55);
  const next = pattern(SPOOL_PIECE, 56);
  const other = pattern(SPOOL_PIECE, 57);
  await spool.put(0, old, await pieceDigest(old));
  await spool.put(1, other, await pieceDigest(other));
  const handed = spool.file(0, SPOOL_PIECE);
  assert(handed !== undefined, "the file of a piece held");
  using sending = await Deno.open(`/proc/self/fd/${handed.fd}`);
  const reading = spool.read(0, SPOOL_PIECE);
  // Another downloader (of the same version by its validator) has another piece 0.
  spool.drop(0);
  await spool.put(0, next, await pieceDigest(next));
  const sent = new Uint8Array(SPOOL_PIECE);
  await readFull(sending, sent);
  assert(sameBytes(sent, old), "the listener's range keeps the bytes it was handed");
  assert(sameBytes((await reading)!, old), "a read begun before the drop is the old piece's");
  assert(sameBytes((await spool.read(0, SPOOL_PIECE))!, next), "the new piece is read now");
  // Handed out again: the new piece's bytes, from where they went.
  const again = spool.file(0, SPOOL_PIECE);
  assert(again !== undefined, "the file of the piece put again");
  using resent = await Deno.open(`/proc/self/fd/${again.fd}`);
  await resent.seek(0, Deno.SeekMode.Start);
  await readFull(resent, sent);
  assert(sameBytes(sent, next), "the new piece's range");
  // A range across pieces of two places is read, not handed out as one file's.
  assertEquals(spool.file(SPOOL_PIECE - 10, SPOOL_PIECE + 10), undefined);
  const across = await spool.read(SPOOL_PIECE - 10, SPOOL_PIECE + 10);
  assert(
    sameBytes(across!, new Uint8Array([...next.subarray(-10), ...other.subarray(0, 10)])),
    "a read across both",
  );
});

Deno.test("a spool piece a downloader digests with the other algorithm is checked here and kept, not dropped", async () => {
  using spool = Spool.open();
  const bytes = pattern(SPOOL_PIECE, 58);
  const wrong = pattern(SPOOL_PIECE, 59);
  for (const [held, now] of [["sha256", "blake3"], ["blake3", "sha256"]] as const) {
    await spool.put(0, bytes, await pieceDigest(bytes, held));
    await spool.put(1, bytes, await pieceDigest(bytes, held));
    // Piece 0's bytes are the downloader's; piece 1's are not.
    await spool.check(0, await pieceDigest(bytes, now));
    await spool.check(1, await pieceDigest(wrong, now));
    assertEquals(spool.digests[0], await pieceDigest(bytes, now), `${held} held, ${now} now`);
    assertEquals(spool.has(1), false, `${held} held, ${now} now`);
    assert(sameBytes((await spool.read(0, SPOOL_PIECE))!, bytes), "the piece kept");
    spool.reset(undefined);
  }
});
