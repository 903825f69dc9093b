import { assert, assertEquals } from "../helpers/assert.ts";
import { ViewLoans } from "../../p2p/swarm/view_loans.ts";

Deno.test("a view lent to relays is waited for until every loan is back, then lent no more", async () => {
  const loans = new ViewLoans();
  const view = new Uint8Array(16);
  const first = loans.lend(view.subarray(0, 8))!;
  const second = loans.lend(view.subarray(8))!;
  // The bytes themselves, not copies.
  assert(first.bytes.buffer === view.buffer);
  assertEquals(loans.out, 2);
  let ended = false;
  const ending = loans.end(10_000).then(() => ended = true);
  // Lending has ended: no new loan while the old ones are out.
  assertEquals(loans.lend(view), undefined);
  first.done();
  first.done(); // Once only.
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert(!ended);
  second.done();
  await ending;
  assert(ended && !first.signal.aborted && !second.signal.aborted);
  await loans.end(); // Idempotent.
});

Deno.test("a loan not back within the grace is revoked, and the view's owner goes on", async () => {
  const loans = new ViewLoans();
  const stalled = loans.lend(new Uint8Array(4))!;
  const started = performance.now();
  await loans.end(50);
  assert(performance.now() - started >= 45);
  assert(stalled.signal.aborted);
  assertEquals(loans.out, 0);
  stalled.done();
});
