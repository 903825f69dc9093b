/** The identity contract of `LeaseStore.grant` (core/lease_store.ts), as MemoryLeaseStore keeps it. */
import { MemoryLeaseStore } from "../../backends/memory_lease_store.ts";
import { Access, leaseRecord, ManualClock } from "../../core/mod.ts";
import { assert } from "../helpers/assert.ts";
import { createAs } from "../helpers/lease_store_cases.ts";

Deno.test("grant() returns the identical info while nothing changed, a new one after each change", async () => {
  const clock = new ManualClock(1_000_000);
  const leases = new MemoryLeaseStore(clock);
  const now = clock.now();
  await createAs(leases, "x", "c", now);
  await leases.seal("c", { sealedAt: now });
  const read = (id: string) => leases.grant("x", leaseRecord(id, "x", Access.READ, undefined, now));
  const first = await read("r1");
  assert(await read("r2") === first, "a second grant returned another object");
  await leases.annotate("x", { tier: "cold" });
  const annotated = await read("r3");
  assert(annotated !== first, "an annotated object came back as the old info");
  assert(annotated.tier === "cold");
  assert(await read("r4") === annotated);
  await leases.close();
});
