/** An object past its deadline is out of lists from then on, also while its removal is under way. */
import { assertEquals } from "../helpers/assert.ts";
import {
  Access,
  Client,
  type LeaseRecord,
  ManualClock,
  MemoryLeaseStore,
  MemoryPeer,
  type ObjectInfo,
} from "../../mod.ts";

/** A memory lease store whose WRITE grants wait while it is held. */
class HeldWrites extends MemoryLeaseStore {
  #held: Promise<void> | undefined;
  #let: () => void = () => {};
  writes = 0;

  hold(): void {
    this.#held = new Promise((resolve) => this.#let = resolve);
  }

  let(): void {
    this.#held = undefined;
    this.#let();
  }

  override async grant(objectId: string, lease: LeaseRecord): Promise<ObjectInfo> {
    if (lease.access === Access.WRITE) {
      this.writes++;
      await this.#held;
    }
    return super.grant(objectId, lease);
  }
}

function ids(infos: readonly ObjectInfo[]): string[] {
  return infos.map((info) => info.id);
}

Deno.test("an object past its deadline stays out of lists while its removal waits", async () => {
  const clock = new ManualClock(10_000);
  const leases = new HeldWrites(clock);
  await using peer = new MemoryPeer({ leases, clock, sweepInterval: 0 });
  const client = new Client(peer);
  const kept = [await client.put("a"), await client.put("b")];
  const expiring = await client.put("c", { ttl: 1000 });
  kept.push(await client.put("d"));
  clock.advance(1000);
  leases.hold();
  // The first list finds it past its deadline and starts its removal, which waits.
  assertEquals(ids(await peer.list()), kept);
  assertEquals(leases.writes, 1);
  assertEquals(ids(await peer.list()), kept);
  assertEquals(ids((await peer.listPage({ limit: 10 })).objects), kept);
  assertEquals(await peer.has(expiring), false);
  leases.let();
  await client.put("e");
  assertEquals((await peer.list()).length, 4);
  assertEquals((await peer.stats()).objects, 4);
});
