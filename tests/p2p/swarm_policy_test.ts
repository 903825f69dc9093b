import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { Blocklist, pieceDeadline, PiecePicker, SourceSpeed } from "../../mod.ts";
import { announcedBitfield, hasPiece, isComing } from "../../p2p/swarm/bitfield.ts";

/** A clock the test moves by hand. */
function fakeClock(): { now: number; read: () => number } {
  const clock = { now: 1000, read: () => clock.now };
  return clock;
}

Deno.test("a blocked source stays blocked for its duration, then is asked again", () => {
  const clock = fakeClock();
  const blocklist = new Blocklist(30_000, clock.read);
  assert(!blocklist.blocked("a"));
  blocklist.block("a");
  clock.now += 29_999;
  assert(blocklist.blocked("a"));
  assertEquals(blocklist.size, 1);
  clock.now += 1;
  assert(!blocklist.blocked("a"));
  assertEquals(blocklist.size, 0);
  assertThrows(() => new Blocklist(-1), RangeError);
});

Deno.test("a piece's timeout grows with its size: 4 s + 4 s per MiB by default", () => {
  assertEquals(pieceDeadline(0), 4000);
  assertEquals(pieceDeadline(4 << 20), 20_000);
  assertEquals(pieceDeadline(64 << 20), 260_000);
  assertEquals(pieceDeadline(1 << 19, { base: 100, perMiB: 1000 }), 600);
});

Deno.test("a source is slow only when far behind its own mean, after a few pieces", () => {
  const speed = new SourceSpeed(5, 3);
  // A slow link is not punished: all its pieces are slow alike.
  for (let i = 0; i < 10; i++) assert(!speed.record(1 << 20, 1000));
  assert(!speed.record(1 << 20, 4000));
  assert(speed.record(1 << 20, 60_000));
  const fresh = new SourceSpeed(5, 3);
  // Not judged before its warm-up.
  assert(!fresh.record(1 << 20, 10));
  assert(!fresh.record(1 << 20, 10_000));
});

Deno.test("pieces go rarest first, ties at random, never twice before the endgame", () => {
  const picker = new PiecePicker(4, () => 0.99);
  // Piece 2 is held by one source, the others by two.
  picker.addSource();
  picker.addSource((piece) => piece !== 2);
  const mine = new Set<number>();
  assertEquals(picker.next(() => true, mine), { piece: 2, duplicate: false, count: 1 });
  // Ties: with random() near 1 the first of the tied pieces is kept.
  assertEquals(picker.next(() => true, mine), { piece: 0, duplicate: false, count: 1 });
  const low = new PiecePicker(4, () => 0);
  // With random() at 0 each later tie replaces the earlier: the last one.
  assertEquals(low.next(() => true, new Set()), { piece: 3, duplicate: false, count: 1 });
  // Only pieces the source has.
  assertEquals(picker.next((piece) => piece === 2 || piece === 3, mine)?.piece, 3);
  assertEquals(picker.next((piece) => piece === 2, mine), undefined);
  picker.finish(2, true);
  assert(picker.done(2));
  assertEquals(picker.missing, 3);
  // A failed request gives the piece back.
  picker.finish(0, false);
  assertEquals(picker.next(() => true, mine)?.piece, 0);
});

Deno.test("rarest first counts the copies on their way to partial holders", () => {
  const picker = new PiecePicker(3, () => 0.99);
  picker.addSource();
  // A partial holder has piece 0 and has piece 1 coming; another has pieces 1 and 2.
  picker.addSource((piece) => piece === 0, true, (piece) => piece <= 1);
  const other = (piece: number) => piece >= 1;
  picker.addSource(other, true);
  // Pieces 1 and 2 each have two holders, but piece 1 is on its way to a third.
  assertEquals(picker.next(other, new Set()), { piece: 2, duplicate: false, count: 1 });
});

Deno.test("the endgame duplicates a straggling piece only, never one's own, never a third time", () => {
  const clock = fakeClock();
  const picker = new PiecePicker(3, Math.random, clock.read);
  picker.addSource();
  const first = new Set<number>();
  for (let i = 0; i < 3; i++) first.add(picker.next(() => true, first)!.piece);
  clock.now += 100;
  picker.finish(0, true);
  // Mean piece time 100 ms: pieces 1 and 2 (100 ms old) are not straggling yet.
  assertEquals(picker.next(() => true, new Set()), undefined);
  clock.now += 150;
  const other = new Set<number>();
  const pick = picker.next(() => true, other);
  assertEquals(pick, { piece: 1, duplicate: true, count: 1 });
  other.add(1);
  // The source fetching a piece is never its duplicate.
  assertEquals(picker.next((piece) => piece === 2, first), undefined);
  assertEquals(picker.next(() => true, other), { piece: 2, duplicate: true, count: 1 });
  // Both pieces now have two requests: no third.
  assertEquals(picker.next(() => true, new Set()), undefined);
  picker.finish(1, true);
  picker.finish(1, false);
  assertEquals(picker.missing, 1);
});

Deno.test("a lone whole holder is asked for runs of free pieces, shorter where they stop", () => {
  const picker = new PiecePicker(8, () => 0.99);
  picker.addSource();
  // Ties kept at the first piece: a run of 4 from it.
  assertEquals(picker.next(() => true, new Set(), true, 4), {
    piece: 0,
    duplicate: false,
    count: 4,
  });
  // The next run stops before a piece the source lacks.
  assertEquals(picker.next((piece) => piece !== 6, new Set(), true, 4), {
    piece: 4,
    duplicate: false,
    count: 2,
  });
  assertEquals(picker.missing, 8);
});

Deno.test("a whole holder is not asked for a piece a partial holder has or has coming", () => {
  const clock = fakeClock();
  const picker = new PiecePicker(4, () => 0.99, clock.read);
  picker.addSource();
  // A partial holder has piece 0 and has piece 1 coming.
  const partial = { has: (p: number) => p === 0, covers: (p: number) => p <= 1, partial: true };
  picker.addSource(partial.has, true, partial.covers);
  const mine = new Set<number>();
  assertEquals(picker.next(() => true, mine, true)?.piece, 2);
  assertEquals(picker.next(() => true, mine, true)?.piece, 3);
  // Nothing else: piece 1, only coming, is left to its receiver for a while...
  clock.now += 1999;
  assertEquals(picker.next(() => true, mine, true), undefined);
  // ...even when the partial holder's listing is counted anew...
  picker.replaceSource(partial, partial);
  clock.now += 1;
  // ...then the whole holder is asked; never for piece 0, which the partial holder has.
  assertEquals(picker.next(() => true, mine, true), { piece: 1, duplicate: false, count: 1 });
  assertEquals(picker.next(() => true, mine, true), undefined);
  // The partial holder itself is asked for what it has.
  assertEquals(picker.next(partial.has, new Set()), { piece: 0, duplicate: false, count: 1 });
});

Deno.test("the endgame never duplicates on a whole holder a piece a partial holder covers", () => {
  const clock = fakeClock();
  const picker = new PiecePicker(2, Math.random, clock.read);
  picker.addSource();
  picker.addSource(() => true, true);
  const fromPartial = new Set<number>();
  fromPartial.add(picker.next(() => true, fromPartial)!.piece);
  fromPartial.add(picker.next(() => true, fromPartial)!.piece);
  clock.now += 100;
  picker.finish(0, true);
  // Piece 1 straggles at the partial holder; the whole holder does not send it twice.
  clock.now += 1000;
  assertEquals(picker.next(() => true, new Set(), true), undefined);
  // Another partial holder may.
  assertEquals(picker.next(() => true, new Set()), { piece: 1, duplicate: true, count: 1 });
});

Deno.test("a partial holder announces the pieces it has, then those coming, readable by either reader", () => {
  const bits = announcedBitfield(10, (p) => p === 0 || p === 9, (p) => p === 0 || p === 3);
  assertEquals(bits.length, 4);
  // A reader of the first bitfield only sees what it has.
  assertEquals([0, 3, 9].map((p) => hasPiece(bits, p)), [true, false, true]);
  // A piece it has is not also coming.
  assertEquals([0, 3, 9].map((p) => isComing(bits, 10, p)), [false, true, false]);
  // An older holder's single bitfield has nothing coming.
  assertEquals(isComing(bits.subarray(0, 2), 10, 3), false);
});
