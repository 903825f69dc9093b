/**
 * The downloader's super-seeding on a fake clock: each new piece is offered
 * to one downstream peer first, to the others once its grace has passed
 * and no other peer says it has the piece; peers that ask late (a loaded
 * host) stretch that grace, within a bound. After the download, pieces
 * another peer has still come from it.
 */
import { Assembly } from "../../p2p/origin/assembly.ts";
import { Tracker } from "../../p2p/origin/progress.ts";
import { bitfieldOf, hasPiece } from "../../p2p/swarm/bitfield.ts";
import { assertEquals } from "../helpers/assert.ts";

/**
 * A download led on a fake clock, two pieces of 4 MiB, followed by `a` and
 * `b`. Disposed once the whole hash of the pieces verified is over: it runs
 * on the thread pool over the view, which the runtime frees when this
 * module's last test is done (a hash still reading it then crashed the runner).
 */
function led() {
  const clock = { now: 1_000_000 };
  const tracker = new Tracker(() => clock.now);
  const assembly = new Assembly("model", 8 << 20, new Uint8Array(8 << 20));
  tracker.lead("model");
  tracker.downloading("model", assembly, {});
  /** What `node` is offered when it asks now, saying it has `has`. */
  const ask = (node: string, has: number[] = []) => {
    const pieces = has.length === 0 ? undefined : bitfieldOf(2, (piece) => has.includes(piece));
    const holder = { node, address: `http://${node}`, ...(pieces ? { pieces } : {}) };
    const offered = tracker.answer({ id: "model", holder }).pieces!;
    return [0, 1].filter((piece) => hasPiece(offered, piece));
  };
  /** Both ask every `gap` ms, `times` times. */
  const poll = (gap: number, times: number) => {
    for (let i = 0; i < times; i++) {
      clock.now += gap;
      ask("a");
      ask("b");
    }
  };
  /**
   * With both asking every `gap` ms (a never saying it has the piece): how
   * long after piece 0 was first offered to a it is offered to b too.
   */
  const offeredToAll = (gap: number) => {
    poll(gap, 30);
    assembly.verifiedPiece(0);
    clock.now += gap;
    // Piece 0 is a's (the followers sorted, by turns).
    assertEquals(ask("a"), [0]);
    assertEquals(ask("b"), []);
    for (let after = gap; after < 20_000; after += gap) {
      clock.now += gap;
      ask("a");
      if (ask("b").includes(0)) return after;
    }
    throw new Error("Never offered to b");
  };
  /** The download ends. */
  const end = () => tracker.end("model", { digest: `sha256:${"0".repeat(64)}` });
  return {
    clock,
    assembly,
    ask,
    offeredToAll,
    end,
    [Symbol.asyncDispose]: () => assembly.settled(),
  };
}

Deno.test("a new piece goes to its one follower for 600 ms while followers ask every 100 ms, then to all", async () => {
  await using download = led();
  assertEquals(download.offeredToAll(100), 600);
});

Deno.test("a piece a follower says it has is not offered to the others, past the grace too", async () => {
  await using download = led();
  const { clock, assembly, ask } = download;
  ask("a");
  ask("b");
  assembly.verifiedPiece(0);
  assertEquals(ask("a"), [0]);
  for (let after = 100; after <= 5000; after += 100) {
    clock.now += 100;
    ask("a", [0]);
    assertEquals(ask("b"), [], `${after} ms after: b takes it from a`);
  }
});

Deno.test("followers that ask late stretch the grace: by twice the chosen one's delay and the asker's", async () => {
  // Every 500 ms: 600 + 2 x 400 + 400 = 1800 ms (a hears of the piece and says it has it, b
  // hears of that), so b is offered it at its first ask past that.
  await using download = led();
  assertEquals(download.offeredToAll(500), 2000);
});

Deno.test("the stretch is bounded: 8 x 600 ms at most, however late followers ask", async () => {
  // Every 1.9 s (a follower stays listed for 2 s): 600 + 3 x 1800 = 6000 ms unbounded, 4800 ms
  // bounded, so b is offered it at its third ask, not its fourth.
  await using download = led();
  assertEquals(download.offeredToAll(1900), 5700);
});

Deno.test("after the download, a follower is offered every piece but those another says it has", async () => {
  await using download = led();
  const { assembly, ask, end } = download;
  ask("a");
  ask("b");
  assembly.verifiedPiece(0);
  assembly.verifiedPiece(1);
  end();
  // a has piece 0: b takes it from a; piece 1 no follower has, so the downloader offers it.
  ask("a", [0]);
  assertEquals(ask("b"), [1]);
  // Once b has piece 1, a takes it from b.
  ask("b", [1]);
  assertEquals(ask("a", [0]), [0]);
});
