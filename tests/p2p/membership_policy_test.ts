/** The membership's policies, each driven by a fake clock: no sleeping, no network. */
import { Awareness } from "../../p2p/membership/awareness.ts";
import { BroadcastQueue } from "../../p2p/membership/broadcast_queue.ts";
import {
  failureDetectionBounds,
  LAN_PROFILE,
  pushPullScale,
  retransmitLimit,
  suspicionTimeout,
  TEST_PROFILE,
} from "../../p2p/membership/config.ts";
import { MemberTable } from "../../p2p/membership/member_table.ts";
import type { AliveUpdate } from "../../p2p/membership/messages.ts";
import { Suspicion, suspicionRemaining } from "../../p2p/membership/suspicion.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { FakeTimers } from "./fake_timers.ts";

Deno.test("suspicionTimeout() grows with log10 of the cluster size, as memberlist's", () => {
  assertEquals(suspicionTimeout(4, 1, 1000), 4000);
  assertEquals(suspicionTimeout(4, 10, 1000), 4000);
  assertEquals(suspicionTimeout(4, 100, 1000), 8000);
  assertEquals(suspicionTimeout(4, 1000, 1000), 12000);
});

Deno.test("retransmitLimit() is mult x ceil(log10(n + 1))", () => {
  assertEquals(retransmitLimit(4, 1), 4);
  assertEquals(retransmitLimit(4, 9), 4);
  assertEquals(retransmitLimit(4, 10), 8);
  assertEquals(retransmitLimit(4, 500), 12);
});

Deno.test("pushPullScale() slows full syncs past 32 members, one interval per doubling", () => {
  assertEquals(pushPullScale(30_000, 32), 30_000);
  assertEquals(pushPullScale(30_000, 33), 60_000);
  assertEquals(pushPullScale(30_000, 64), 60_000);
  assertEquals(pushPullScale(30_000, 512), 150_000);
});

Deno.test("failureDetectionBounds() for the LAN and test profiles", () => {
  const lan = failureDetectionBounds(LAN_PROFILE, 8);
  assertEquals(lan.suspect, 8000);
  assertEquals(lan.dead, 8000 + 4000 * 6 + 800);
  const test = failureDetectionBounds(TEST_PROFILE, 4);
  assertEquals(test.suspect, 800);
  assertEquals(test.dead, 800 + 800 * 3 + 200);
  assert(test.deadTypical < test.dead);
});

Deno.test("Awareness stays in [0, max - 1] and scales timeouts by score + 1", () => {
  const awareness = new Awareness(8);
  assertEquals(awareness.scale(500), 500);
  awareness.apply(-1);
  assertEquals(awareness.score, 0);
  awareness.apply(3);
  assertEquals(awareness.scale(500), 2000);
  awareness.apply(100);
  assertEquals(awareness.score, 7);
  assertEquals(awareness.scale(1000), 8000);
  assertThrows(() => new Awareness(0), RangeError);
});

Deno.test("Suspicion fires at max without confirmations", () => {
  const timers = new FakeTimers();
  let fired = -1;
  new Suspicion("a", 2, 1000, 6000, timers, (n) => fired = n);
  timers.advance(5999);
  assertEquals(fired, -1);
  timers.advance(1);
  assertEquals(fired, 0);
});

Deno.test("Suspicion fires at min when no confirmations are wanted (k < 1)", () => {
  const timers = new FakeTimers();
  let fired = false;
  new Suspicion("a", 0, 1000, 6000, timers, () => fired = true);
  timers.advance(1000);
  assert(fired);
});

Deno.test("Suspicion shrinks on a log scale with independent confirmations, once each", () => {
  const timers = new FakeTimers();
  let fired = -1;
  const suspicion = new Suspicion("a", 3, 1000, 6000, timers, (n) => fired = n);
  assert(!suspicion.confirm("a"), "the accuser's own echo does not confirm");
  timers.advance(500);
  assert(suspicion.confirm("b"));
  assert(!suspicion.confirm("b"), "one confirmation per member");
  // After 1 of 3: 6000 - 5000 * log(2)/log(4) = 3500.
  assertEquals(suspicionRemaining(1, 3, 500, 1000, 6000), 3000);
  timers.advance(2999);
  assertEquals(fired, -1);
  assert(suspicion.confirm("c"));
  assert(suspicion.confirm("d"));
  assert(!suspicion.confirm("e"), "no more than k");
  // Three of three: min, already past: fires at once.
  timers.advance(0);
  assertEquals(fired, 3);
});

Deno.test("Suspicion.cancel() stops it for good", () => {
  const timers = new FakeTimers();
  let fired = false;
  const suspicion = new Suspicion("a", 0, 100, 100, timers, () => fired = true);
  suspicion.cancel();
  suspicion.cancel();
  timers.advance(1000);
  assert(!fired);
  assertEquals(timers.pending, 0);
});

function alive(node: string, incarnation = 1, address = `http://${node}`): AliveUpdate {
  return { kind: "alive", node, address, incarnation, boot: `${node}-boot` };
}

Deno.test("BroadcastQueue sends each change a bounded number of times, least sent first", () => {
  let members = 5;
  const queue = new BroadcastQueue(2, () => members); // limit 2 x ceil(log10 6) = 2
  queue.push(alive("a"));
  queue.push(alive("b"));
  assertEquals(queue.take(1).map((u) => u.node), ["b"]); // newest first among the least sent
  assertEquals(queue.take(1).map((u) => u.node), ["a"]);
  assertEquals(queue.take(10).map((u) => u.node), ["b", "a"]);
  assertEquals(queue.size, 0);
  members = 50; // limit 4
  queue.push(alive("c"));
  for (let i = 0; i < 4; i++) assertEquals(queue.take(10).length, 1);
  assertEquals(queue.take(10).length, 0);
});

Deno.test("BroadcastQueue keeps only the newest change about a member", () => {
  const queue = new BroadcastQueue(4, () => 3);
  queue.push(alive("a", 1));
  queue.push({ kind: "suspect", node: "a", incarnation: 1, from: "b" });
  const taken = queue.take(10);
  assertEquals(taken.length, 1);
  assertEquals(taken[0]!.kind, "suspect");
});

function table(timers: FakeTimers, node = "self") {
  const queue = new BroadcastQueue(4, () => 3);
  const awareness = new Awareness(8);
  const t = new MemberTable({
    self: { node, address: `http://${node}`, boot: `${node}-boot` },
    config: TEST_PROFILE,
    timers,
    awareness,
    queue,
  });
  return { table: t, queue, awareness };
}

Deno.test("MemberTable: alive needs a newer incarnation, suspicion times out into dead", () => {
  const timers = new FakeTimers();
  const { table: t, queue } = table(timers);
  const changes: string[] = [];
  t.onChange((m) => changes.push(`${m.node}:${m.state}:${m.incarnation}`));
  t.alive(alive("a", 1));
  t.alive(alive("a", 1)); // not news
  t.suspect({ kind: "suspect", node: "a", incarnation: 0, from: "self" }); // stale
  assertEquals(t.get("a")!.state, "alive");
  t.suspect({ kind: "suspect", node: "a", incarnation: 1, from: "self" });
  assertEquals(t.get("a")!.state, "suspect");
  // Two members known, so no confirmations are wanted: the least timeout, 4 x 200 ms.
  timers.advance(799);
  assertEquals(t.get("a")!.state, "suspect");
  timers.advance(1);
  assertEquals(t.get("a")!.state, "dead");
  assertEquals(changes, ["a:alive:1", "a:suspect:1", "a:dead:1"]);
  assertEquals(t.counters, { suspicions: 1, refutations: 0, deaths: 1 });
  assert(queue.size > 0);
});

Deno.test("MemberTable: a suspect that refutes with a higher incarnation stays alive", () => {
  const timers = new FakeTimers();
  const { table: t } = table(timers);
  t.alive(alive("a", 1));
  t.suspect({ kind: "suspect", node: "a", incarnation: 1, from: "b" });
  t.alive(alive("a", 2));
  timers.advance(10_000);
  assertEquals(t.get("a")!.state, "alive");
  assertEquals(t.get("a")!.incarnation, 2);
});

Deno.test("MemberTable: this member refutes suspicion and death above the accusation", () => {
  const timers = new FakeTimers();
  const { table: t, queue, awareness } = table(timers);
  t.suspect({ kind: "suspect", node: "self", incarnation: 1, from: "a" });
  assertEquals(t.me.state, "alive");
  assertEquals(t.me.incarnation, 2);
  t.dead({ kind: "dead", node: "self", incarnation: 7, from: "a" });
  assertEquals(t.me.state, "alive");
  assertEquals(t.me.incarnation, 8);
  assertEquals(t.counters.refutations, 2);
  assertEquals(awareness.score, 2, "each refutation counts against local health");
  const sent = queue.take(10);
  assertEquals(sent.map((u) => [u.kind, u.node, u.incarnation]), [["alive", "self", 8]]);
});

Deno.test("MemberTable: a member's own dead message is a leave; a stale alive does not revive it", () => {
  const timers = new FakeTimers();
  const { table: t } = table(timers);
  t.alive(alive("a", 3));
  t.dead({ kind: "dead", node: "a", incarnation: 3, from: "a" });
  assertEquals(t.get("a")!.state, "left");
  t.alive(alive("a", 3));
  assertEquals(t.get("a")!.state, "left");
  t.alive(alive("a", 4));
  assertEquals(t.get("a")!.state, "alive");
});

Deno.test("MemberTable: an alive member cannot move address unless it restarted", () => {
  const timers = new FakeTimers();
  const { table: t } = table(timers);
  t.alive(alive("a", 1, "http://old"));
  t.alive({ kind: "alive", node: "a", address: "http://new", incarnation: 2, boot: "a-boot" });
  assertEquals(t.get("a")!.address, "http://old");
  t.alive({ kind: "alive", node: "a", address: "http://new", incarnation: 2, boot: "a-restart" });
  assertEquals(t.get("a")!.address, "http://new");
});

Deno.test("MemberTable: merge suspects rather than kills what another member thinks dead", () => {
  const timers = new FakeTimers();
  const { table: t } = table(timers);
  t.alive(alive("a", 1));
  t.merge([
    { node: "a", address: "http://a", state: "dead", incarnation: 1, boot: "a-boot" },
    { node: "b", address: "http://b", state: "alive", incarnation: 5, boot: "b-boot" },
  ]);
  assertEquals(t.get("a")!.state, "suspect");
  assertEquals(t.get("b")!.incarnation, 5);
  t.reap();
  timers.advance(TEST_PROFILE.reapTime + 10_000);
  t.reap();
  assertEquals(t.get("a"), undefined, "dead members are forgotten after the reap time");
  t.close();
});

Deno.test("MemberTable: with enough members, confirmations shorten suspicion", () => {
  const timers = new FakeTimers();
  const { table: t } = table(timers);
  for (const node of ["a", "b", "c", "d"]) t.alive(alive(node));
  t.suspect({ kind: "suspect", node: "a", incarnation: 1, from: "b" });
  // 5 live members: k = 2, min 800 ms, max 2400 ms.
  timers.advance(1000);
  assertEquals(t.get("a")!.state, "suspect");
  t.suspect({ kind: "suspect", node: "a", incarnation: 1, from: "c" });
  t.suspect({ kind: "suspect", node: "a", incarnation: 1, from: "d" });
  timers.advance(0);
  assertEquals(t.get("a")!.state, "dead");
});

Deno.test("failureDetectionBounds() stops growing with rounds past 15 members", () => {
  const big = failureDetectionBounds(LAN_PROFILE, 500);
  assertEquals(big.suspect, 15_000);
  // Suspicion at most 6 x 4 x log10(500) s, then four gossip rounds.
  assertEquals(big.dead, 15_000 + suspicionTimeout(4, 500, 1000) * 6 + 800);
});
