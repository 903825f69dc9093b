import { assert, assertEquals } from "../helpers/assert.ts";
import { RepeatGuard } from "../../transport/http/repeat_guard.ts";

Deno.test("a range is not sent again while it is sent, nor in the window after", () => {
  let now = 0;
  const guard = new RepeatGuard(400, () => now);
  const sent = guard.admit("x 0-9");
  assert(sent !== undefined);
  // Another range is no repeat.
  assert(guard.admit("x 10-19") !== undefined);
  // However long the send takes, a repeat waits for it.
  now += 10_000;
  assertEquals(guard.admit("x 0-9"), undefined);
  sent();
  now += 399;
  assertEquals(guard.admit("x 0-9"), undefined);
  now += 1;
  assert(guard.admit("x 0-9") !== undefined);
  // A window of 0 lets everything through.
  const off = new RepeatGuard(0);
  assert(off.admit("y") !== undefined && off.admit("y") !== undefined);
});

Deno.test("a range refused after all, with nothing sent, may be asked again at once", () => {
  const guard = new RepeatGuard(400, () => 0);
  const refused = guard.admit("x 0-9");
  assert(refused !== undefined);
  refused(false);
  const sent = guard.admit("x 0-9");
  assert(sent !== undefined);
  sent();
  assertEquals(guard.admit("x 0-9"), undefined);
});
