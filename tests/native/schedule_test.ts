import { assertEquals } from "../helpers/assert.ts";
import { Schedule } from "../../native/schedule.ts";

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("Flusher.endOfTurn() sends the requests of one turn in one flush", async () => {
  let flushes = 0;
  let thens = 0;
  const flusher = new Schedule().flusher(() => flushes++);
  for (let i = 0; i < 5; i++) flusher.endOfTurn(() => thens++);
  assertEquals(flushes, 0, "nothing leaves before the turn ends");
  await turn();
  assertEquals([flushes, thens], [1, 1]);
});

Deno.test("Flusher.nextTurn() flushes once when the event loop turns", async () => {
  let flushes = 0;
  const flusher = new Schedule().flusher(() => flushes++);
  flusher.nextTurn();
  flusher.nextTurn();
  await Promise.resolve();
  assertEquals(flushes, 0, "not at the end of the microtasks");
  await turn();
  assertEquals(flushes, 1);
});

Deno.test("Flusher.whenSettled() waits for requests in flight, a bounded number of hops", async () => {
  let flushes = 0;
  let inflight = 1;
  const flusher = new Schedule().flusher(() => flushes++);
  flusher.whenSettled(() => inflight, () => {});
  await Promise.resolve();
  await Promise.resolve();
  assertEquals(flushes, 0, "a request is still in flight");
  inflight = 0;
  await turn();
  assertEquals(flushes, 1);
  inflight = 1;
  flusher.whenSettled(() => inflight, () => {});
  await turn();
  assertEquals(flushes, 2, "a request that never settles does not hold replies for ever");
});

Deno.test("Schedule.afterWork() lets busy work run first, but not for ever", async () => {
  const schedule = new Schedule();
  const order: string[] = [];
  schedule.busy(1);
  schedule.afterWork(() => order.push("wait"));
  queueMicrotask(() =>
    queueMicrotask(() => {
      order.push("work");
      schedule.busy(-1);
    })
  );
  await turn();
  assertEquals(order, ["work", "wait"]);
  schedule.busy(1);
  schedule.afterWork(() => order.push("wait again"));
  await turn();
  assertEquals(order.at(-1), "wait again", "still busy, yet it runs");
});

Deno.test("Flusher.nextTurn() of many flushers flushes each once when the event loop turns", async () => {
  const schedule = new Schedule();
  const flushes = [0, 0, 0];
  const flushers = flushes.map((_, i) => schedule.flusher(() => flushes[i]!++));
  for (const flusher of flushers) flusher.nextTurn();
  flushers[1]!.nextTurn();
  await turn();
  assertEquals(flushes, [1, 1, 1]);
  flushers[2]!.nextTurn();
  await turn();
  assertEquals(flushes, [1, 1, 2], "asked again after the turn: flushed again");
});
