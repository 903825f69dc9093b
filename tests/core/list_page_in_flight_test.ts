/**
 * A put in flight (its lease store entry made, its blob not yet) is listed
 * by a page as by the bare list: CREATING, at its place in put order, once.
 */
import { assertEquals } from "../helpers/assert.ts";
import {
  BasePeer,
  Client,
  HeapBlobStore,
  MemoryLeaseStore,
  type ObjectInfo,
  type StoredObject,
} from "../../mod.ts";

/** A heap blob store whose allocation of one id waits until it is let go. */
class GatedBlobs extends HeapBlobStore {
  gated = "";
  #open: () => void = () => {};
  #reached: () => void = () => {};
  /** Settles when the gated allocation has started. */
  reached = new Promise<void>((resolve) => this.#reached = resolve);

  override async allocate(info: ObjectInfo): Promise<StoredObject> {
    if (info.id === this.gated) {
      this.#reached();
      await new Promise<void>((resolve) => this.#open = resolve);
    }
    return super.allocate(info);
  }

  open(): void {
    this.#open();
  }
}

function ids(infos: readonly ObjectInfo[]): string[] {
  return infos.map((info) => info.id);
}

/** A memory lease store that a peer takes for a shared one: no index of its own objects. */
function sharedLike(): MemoryLeaseStore {
  const leases = new MemoryLeaseStore();
  Object.defineProperty(leases, "statHere", { value: undefined });
  return leases;
}

for (
  const [kind, leases] of [
    ["its own lease store", () => new MemoryLeaseStore()],
    ["a lease store it pages by its whole list", sharedLike],
  ] as const
) {
  Deno.test(`a put in flight is in a page as in the bare list, at its place, once: ${kind}`, () =>
    inFlight(leases()));
}

async function inFlight(leases: MemoryLeaseStore): Promise<void> {
  const blobs = new GatedBlobs({ capacity: 1 << 20 });
  await using peer = new BasePeer({ blobs, leases, sweepInterval: 0 });
  const client = new Client(peer);
  const before: string[] = [];
  for (let i = 0; i < 5; i++) before.push(await client.put(`before ${i}`));
  blobs.gated = "in-flight";
  const putting = client.put("in flight", { id: "in-flight" });
  await blobs.reached;
  const after: string[] = [];
  for (let i = 0; i < 3; i++) after.push(await client.put(`after ${i}`));

  const listed = await peer.list();
  assertEquals(ids(listed), [...before, "in-flight", ...after]);
  assertEquals(listed.find((info) => info.id === "in-flight")?.state, "CREATING");
  const whole = await peer.listPage({ limit: 100 });
  assertEquals(ids(whole.objects), ids(listed));
  assertEquals(whole.objects[5]!.state, "CREATING");

  // Paged across its landing: listed once, at its place.
  const first = await peer.listPage({ limit: 4 });
  const second = await peer.listPage({ after: first.next!, limit: 2 });
  blobs.open();
  await putting;
  const third = await peer.listPage({ after: second.next!, limit: 100 });
  assertEquals(
    [...ids(first.objects), ...ids(second.objects), ...ids(third.objects)],
    [...before, "in-flight", ...after],
  );
  assertEquals(third.next, undefined);
}
