import { assert, assertEquals } from "../helpers/assert.ts";
import { ViewLoans } from "../../p2p/swarm/view_loans.ts";

Deno.test("a view is lent to relays as it is; when lending ends, the loans still out get copies", () => {
  const loans = new ViewLoans();
  const view = new Uint8Array(16).map((_, i) => i);
  const back = loans.lend(view.subarray(0, 8))!;
  const out = loans.lend(view.subarray(8))!;
  // The bytes themselves, not copies.
  assert(back.bytes.buffer === view.buffer && out.bytes.buffer === view.buffer);
  back.done();
  back.done(); // Once only.
  assertEquals(loans.out, 1);
  loans.end();
  // The loan still out reads a copy of the same bytes: the view may close now.
  assert(out.bytes.buffer !== view.buffer);
  assertEquals(out.bytes, view.subarray(8));
  view.fill(0);
  assertEquals(out.bytes[0], 8);
  // The loan given back kept the view; no loan after the end.
  assert(back.bytes.buffer === view.buffer);
  assertEquals(loans.lend(view), undefined);
  assertEquals(loans.out, 0);
  loans.end(); // Idempotent.
  out.done();
});
