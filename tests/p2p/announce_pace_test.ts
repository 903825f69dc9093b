/**
 * Fewer announces and pushes for the same relaying: a receiver tells the
 * directory its pieces a few at a time (`p2p/swarm/announce_pace.ts`), and
 * an owner of the embedded directory merges the changes for one watcher
 * that come within its push gap (`p2p/directory/watchers.ts`).
 */
import {
  AnnouncePace,
  PIECES_PER_ANNOUNCE,
  POLLED_GAP_MS,
  type Progress,
  TOLD_WITHIN_MAX_MS,
  TOLD_WITHIN_MS,
} from "../../p2p/swarm/announce_pace.ts";
import { PUSH_GAP_MS, Watchers } from "../../p2p/directory/watchers.ts";
import type { HolderChange } from "../../p2p/directory.ts";
import { connect } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemon, TOKEN } from "../helpers/cluster.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { FakeTimers } from "./fake_timers.ts";

/** Progress of `verified` pieces, with `wholeAnswers` requests a whole holder answered. */
function at(verified: number, wholeAnswers = 0): Progress {
  return { verified, wholeAnswers };
}

/** Bitfields (has, then coming) of 16 pieces with `has` verified. */
function bits(has: number, coming = 0): Uint8Array {
  const field = new Uint8Array(4);
  for (let piece = 0; piece < has + coming; piece++) {
    field[(piece < has ? 0 : 2) + (piece >> 3)]! |= 0x80 >> (piece & 7);
  }
  return field;
}

Deno.test("AnnouncePace: the first pieces, the first verified and a whole holder's pieces coming at once, then every 4 verified, or late ones once they waited", () => {
  const pace = new AnnouncePace();
  assertEquals(pace.quiet(true), false, "before the first announce every change counts");
  assertEquals(pace.wait(bits(0), at(0), 0, true), Infinity, "nothing to tell");
  assertEquals(pace.wait(bits(0, 2), at(0), 0, true), 0, "the first pieces coming");
  pace.told(bits(0, 2), at(0), 0);
  assertEquals(pace.due(true), at(1), "the first piece verified wakes the announcer");
  assertEquals(pace.wait(bits(1, 1), at(1), 10, true), 0, "the first piece verified");
  pace.told(bits(1, 1), at(1), 10);
  assertEquals(pace.due(true), at(1 + PIECES_PER_ANNOUNCE));
  assertEquals(pace.due(false), undefined, "without pushes, only the gap counts");
  assertEquals(pace.quiet(true), true, "then only progress wakes the announcer");
  assertEquals(pace.quiet(false), false, "but every change without pushes");
  // Pieces every 30 ms: a change waits for 4 pieces' time (120 ms), and the fourth is told at once.
  assertEquals(pace.wait(bits(2, 1), at(2), 40, true), 4 * 30, "one piece waits");
  assertEquals(pace.wait(bits(3, 1), at(3), 70, true), 4 * 30 - 30);
  assertEquals(pace.wait(bits(4, 1), at(4), 100, true), 4 * 30 - 60);
  assertEquals(pace.wait(bits(5, 1), at(1 + PIECES_PER_ANNOUNCE), 130, true), 0);
  pace.told(bits(5, 1), at(5), 130);
  assertEquals(pace.wait(bits(5, 1), at(5), 131, true), Infinity, "told already");
  // Slower pieces (a mean of 224 ms each so far): a change waits as long as 4 take.
  assertEquals(pace.wait(bits(6, 1), at(6), 1130, true), 4 * (1130 - 10) / 5);
  // However slow, a change waits a second at most.
  assertEquals(pace.wait(bits(6, 2), at(6), 1900, true), TOLD_WITHIN_MAX_MS - (1900 - 1130));
  // A holder of the whole object answered: its pieces coming here are told at once.
  assertEquals(pace.wait(bits(6, 3), at(6, 1), 1901, true), 0, "a whole holder's answer");
  pace.told(bits(6, 3), at(6, 1), 1901);
  assertEquals(pace.due(true), at(6 + PIECES_PER_ANNOUNCE, 1));
  // Pieces quicker than 25 ms each: a change still waits 100 ms for more to join it.
  const quick = new AnnouncePace();
  quick.told(bits(1), at(1), 0);
  quick.wait(bits(2), at(2), 10, true);
  assertEquals(quick.wait(bits(3), at(3), 20, true), TOLD_WITHIN_MS - 10);
  // Without pushes, every change at most every 20 ms, as before.
  const polled = new AnnouncePace();
  assertEquals(polled.wait(bits(1), at(1), 0, false), 0);
  polled.told(bits(1), at(1), 0);
  assertEquals(polled.wait(bits(2), at(2), 5, false), POLLED_GAP_MS - 5);
  assertEquals(polled.wait(bits(2), at(2), 20, false), 0);
});

Deno.test("AnnouncePace: a transfer of 64 pieces landing every 20 ms announces 17 times (every 50 ms as they changed: 26)", () => {
  const pace = new AnnouncePace();
  let announces = 0;
  let now = 0;
  // Each piece: its request answered (coming), then verified 20 ms later.
  for (let piece = 0; piece < 64; piece++) {
    for (const [has, coming] of [[piece, 1], [piece + 1, 0]] as const) {
      const wait = pace.wait(bits16(has, coming), at(has), now, true);
      if (wait === 0) {
        pace.told(bits16(has, coming), at(has), now);
        announces++;
      }
      now += 10;
    }
  }
  // The first coming, the first verified, then one per 4 pieces.
  assertEquals(announces, 2 + Math.floor(63 / PIECES_PER_ANNOUNCE));
});

/** Bitfields of 64 pieces, the first `has` verified and the next `coming` on their way. */
function bits16(has: number, coming: number): Uint8Array {
  const field = new Uint8Array(16);
  for (let piece = 0; piece < has + coming; piece++) {
    field[(piece < has ? 0 : 8) + (piece >> 3)]! |= 0x80 >> (piece & 7);
  }
  return field;
}

Deno.test("Watchers: changes that come within the push gap reach a watcher merged, in one push", async () => {
  const timers = new FakeTimers();
  const pushes: Array<Array<{ id: string; change: HolderChange }>> = [];
  const watchers = new Watchers((_watcher, items) => {
    pushes.push(items);
    return Promise.resolve();
  }, timers);
  watchers.add("model", { node: "w", address: "http://127.0.0.1:1" });
  const announced = (node: string, piece: number): HolderChange => ({
    kind: "announced",
    digest: "sha256:" + "a".repeat(64),
    holder: { node, address: `http://${node}`, pieces: new Uint8Array([0x80 >> piece]) },
  });
  const turn = () => new Promise((resolve) => setTimeout(resolve, 0));
  // Six holders announce two pieces each, 5 ms apart.
  for (let i = 0; i < 12; i++) {
    watchers.notify("model", announced(`r${i % 6}`, i >> 1 & 7));
    await turn();
    timers.advance(5);
    await turn();
  }
  timers.advance(PUSH_GAP_MS);
  await turn();
  await turn();
  // The first at once; the rest after each gap, the latest of each holder only.
  assertEquals(pushes.map((items) => items.length), [1, 6, 2]);
  await watchers.close();
});

Deno.test(
  "a receiver of a 32-piece broadcast to 3 daemons announces its pieces at most 20 times, and they still relay",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "packice-announce-pace-" });
    try {
      const flags = [
        "--capacity",
        "384MiB",
        "--max-upload-rate",
        "64MB",
        "--max-uploads",
        "2",
        "--transfer-budget",
        "160MiB",
      ];
      await using holder = await startClusterDaemon(redis.url, dir, "h", "cluster", flags);
      await using r1 = await startClusterDaemon(redis.url, dir, "r1", "cluster", flags);
      await using r2 = await startClusterDaemon(redis.url, dir, "r2", "cluster", flags);
      await using r3 = await startClusterDaemon(redis.url, dir, "r3", "cluster", flags);
      const receivers = [r1, r2, r3];
      const pieces = 32;
      const most = (pieces * 5) / 8;
      const bytes = pattern(pieces * (4 << 20), 9);
      {
        await using client = await connect(holder.socket);
        await client.put(bytes, { id: "model" });
      }
      const published = async () => {
        const info = String(await redis.command("INFO", "commandstats"));
        const calls = (command: string) =>
          Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(info)?.[1] ?? 0);
        return calls("spublish") + calls("publish");
      };
      const before = await published();
      await Promise.all(receivers.map(async (daemon) => {
        await using client = await connect(daemon.socket);
        using handle = await client.get("model");
        assert(sameBytes(handle.bytes, bytes), `bytes on ${daemon.node}`);
      }));
      const pushed = await published() - before;
      let relayed = 0;
      for (const daemon of receivers) {
        const announces = (await daemon.metrics()).cluster_piece_announces_total!;
        // The first two, one per 4 pieces verified, one per request the holder
        // answered (about a third of the pieces): 12-14. Each 50 ms as pieces
        // changed, as before: 30-33.
        assert(announces <= most, `${daemon.node} announced its pieces ${announces} times`);
        const text = await (await fetch(`${daemon.url}/metrics`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        })).text();
        const served =
          /^packice_http_requests_total\{route="GET \/v1\/objects\/:id",status="206"\} (\S+)$/m
            .exec(text)?.[1];
        const own = /^packice_http_fast_relay_served_total (\S+)$/m.exec(text)?.[1];
        relayed += Number(served ?? 0) + Number(own ?? 0);
      }
      // Every announce is published once, and so are the seals.
      assert(pushed <= receivers.length * (most + 1), `${pushed} changes published`);
      assert(relayed > 0, "no receiver served a piece to the other");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
