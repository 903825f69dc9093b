/**
 * A transfer's listing of holders while the directory is away: it never
 * waits long on a lookup, and asks the partial holders it knows directly.
 */
import { StoreUnavailableError } from "../../mod.ts";
import type { Holder } from "../../p2p/directory.ts";
import { HolderListing } from "../../p2p/holder_listing.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

const whole: Holder = { node: "w", address: "http://w" };
const partial = (node: string, bits: number): Holder => ({
  node,
  address: `http://${node}`,
  pieces: new Uint8Array([bits, 0]),
});

Deno.test("HolderListing: with the directory down, partial holders say what they hold", async () => {
  const asked: string[] = [];
  const listing = new HolderListing({
    initial: [whole, partial("a", 0x00), partial("b", 0x00), partial("c", 0x00)],
    lookup: () => Promise.reject(new StoreUnavailableError("Redis is away")),
    ask: (holder) => {
      asked.push(holder.node);
      // a now has two pieces, b is done (whole), c holds none of it.
      if (holder.node === "a") return Promise.resolve(partial("a", 0xc0));
      if (holder.node === "b") return Promise.resolve({ node: "b", address: "http://b" });
      return Promise.resolve(null);
    },
  });
  const listed = await listing.next();
  assertEquals(asked, ["a", "b", "c"]);
  assertEquals(listed.map((holder) => [holder.node, holder.pieces?.[0]]), [
    ["w", undefined],
    ["a", 0xc0],
    ["b", undefined],
  ]);
  // Asked again only after a while: a request per partial holder each time.
  await listing.next();
  assertEquals(asked.length, 3);
  await listing.settled();
});

Deno.test("HolderListing: a lookup that hangs holds nobody up; the known holders are asked", async () => {
  let answer!: (holders: Holder[]) => void;
  const hanging = new Promise<Holder[]>((resolve) => answer = resolve);
  let lookups = 0;
  const asked: string[] = [];
  const listing = new HolderListing({
    initial: [partial("a", 0x00)],
    lookup: () => (lookups++, hanging),
    ask: (holder) => (asked.push(holder.node), Promise.resolve(undefined)),
  });
  const started = performance.now();
  const first = await listing.next();
  const waited = performance.now() - started;
  assert(waited < 200, `waited ${waited} ms`);
  assertEquals(first.map((holder) => holder.node), ["a"]);
  // Past the hang limit the partial holders are asked; a holder that says nothing clear stays.
  await new Promise((resolve) => setTimeout(resolve, 600));
  assertEquals(asked, ["a"]);
  assertEquals((await listing.next()).map((holder) => holder.node), ["a"]);
  // One lookup at a time however long it hangs; its answer counts once it comes.
  assertEquals(lookups, 1);
  answer([whole]);
  await listing.settled();
  assertEquals((await listing.next()).map((holder) => holder.node), ["w"]);
  await listing.settled();
});

Deno.test("HolderListing: a slow lookup that answers is waited for; no holder is asked", async () => {
  const asked: string[] = [];
  const listing = new HolderListing({
    initial: [partial("a", 0x00)],
    // Slower than the 50 ms a transfer waits, as lookups are now and then on a loaded machine.
    lookup: () => new Promise((resolve) => setTimeout(() => resolve([partial("a", 0x80)]), 350)),
    ask: (holder) => (asked.push(holder.node), Promise.resolve(undefined)),
  });
  // Asked again and again meanwhile, as a transfer does every 50 ms.
  const until = performance.now() + 450;
  while (performance.now() < until) await listing.next();
  await listing.settled();
  assertEquals(asked, []);
  assertEquals((await listing.next()).map((holder) => holder.pieces?.[0]), [0x80]);
  await listing.settled();
});

Deno.test("HolderListing: a change pushed while a lookup runs stands over the lookup's older picture", async () => {
  let answer!: (holders: Holder[]) => void;
  let live = false;
  const listing = new HolderListing({
    initial: [partial("a", 0x00)],
    lookup: () => new Promise<Holder[]>((resolve) => answer = resolve),
    ask: () => Promise.resolve(undefined),
    live: () => live,
  });
  const heard: string[] = [];
  listing.onChange((holder) => heard.push(holder.node));
  const looking = listing.next();
  // Pushed after the lookup began: a has more pieces, b came, c went.
  listing.apply({ kind: "announced", digest: "sha256:x", holder: partial("a", 0xf0) });
  listing.apply({ kind: "announced", digest: "sha256:x", holder: partial("b", 0x80) });
  listing.apply({ kind: "withdrawn", node: "c" });
  assertEquals(heard, ["a", "b"]);
  answer([partial("a", 0x80), partial("c", 0xc0)]);
  await looking;
  assertEquals(
    (await listing.next()).map((holder) => [holder.node, holder.pieces?.[0]]),
    [["a", 0xf0], ["b", 0x80]],
  );
  // Live pushes: no lookup but the one that catches up once they are, and
  // one when the transfer has no source left.
  live = true;
  let lookups = 0;
  const next = listing.next();
  answer([partial("a", 0xf0), partial("b", 0x80)]);
  await next;
  const counting = new HolderListing({
    initial: [],
    lookup: () => (lookups++, Promise.resolve([whole])),
    ask: () => Promise.resolve(undefined),
    live: () => live,
  });
  await counting.next();
  await counting.next();
  await counting.next();
  assertEquals(lookups, 1);
  assertEquals(await counting.next(true), [whole]);
  assertEquals(lookups, 2);
  // A removal pushed while a lookup runs empties what the lookup answers.
  const removed = new HolderListing({
    initial: [whole],
    lookup: () => new Promise<Holder[]>((resolve) => answer = resolve),
    ask: () => Promise.resolve(undefined),
  });
  const pending = removed.next();
  removed.apply({ kind: "removed" });
  answer([whole]);
  await pending;
  assertEquals(await removed.next(), []);
  answer([]);
  await removed.settled();
  await listing.settled();
});
