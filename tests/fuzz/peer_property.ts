/**
 * The fuzzing of the Peer API in process, shared by the tests of every kind of
 * peer: calls with arguments that may be anything, and the property that each
 * gets a Packice error (never a TypeError, never INTERNAL) and leaves no
 * lease, no unsealed object and the seeds unchanged.
 */
import { Access, type Acquired, type DirectPut, PackiceError, type Peer } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { fc } from "./budget.ts";
import { SEED_IDS } from "./fuzz_daemon.ts";
import { acquireFields, anyId, oddId, ttl, wild } from "./values.ts";

/** A peer the fuzzer calls: the Peer API, a one-step put and a digest record. */
export type FuzzedPeer = Peer & DirectPut & Required<Pick<Peer, "recordDigest">>;

type Ref = { known: number } | { value: unknown };

/** One call on the peer, by name, with arguments that may be anything. */
type Call =
  | { kind: "acquire"; fields: Record<string, unknown>; whole: unknown }
  | { kind: "lease"; method: "seal" | "discard" | "release" | "recordDigest"; lease: Ref }
  | { kind: "renew"; lease: Ref; ttl: unknown }
  | { kind: "object"; method: "stat" | "has"; id: unknown }
  | { kind: "put"; chunks: unknown; size: unknown; options: unknown }
  | { kind: "blob"; write: boolean; lease: number; index: number; offset: unknown; data: unknown };

const ref: fc.Arbitrary<Ref> = fc.oneof(
  { weight: 3, arbitrary: fc.nat(7).map((known) => ({ known })) },
  { weight: 1, arbitrary: fc.oneof(wild, oddId).map((value) => ({ value })) },
);

const call: fc.Arbitrary<Call> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      fields: acquireFields("objectId"),
      whole: fc.option(wild, { nil: undefined, freq: 6 }),
    }).map(({ fields, whole }) => ({ kind: "acquire" as const, fields, whole })),
  },
  fc.record({
    method: fc.constantFrom("seal", "discard", "release", "recordDigest") as fc.Arbitrary<
      "seal" | "discard" | "release" | "recordDigest"
    >,
    lease: ref,
  }).map((fields) => ({ kind: "lease" as const, ...fields })),
  fc.record({ lease: ref, ttl: fc.option(ttl, { nil: undefined }) })
    .map((fields) => ({ kind: "renew" as const, ...fields })),
  fc.record({
    method: fc.constantFrom("stat", "has") as fc.Arbitrary<"stat" | "has">,
    id: fc.oneof(anyId, wild),
  }).map((fields) => ({ kind: "object" as const, ...fields })),
  fc.record({
    chunks: fc.oneof(
      { weight: 3, arbitrary: fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 3 }) },
      { weight: 1, arbitrary: wild },
    ),
    size: fc.oneof(fc.nat(200), wild),
    options: fc.oneof(
      { weight: 3, arbitrary: fc.record({ id: anyId, ttl }, { requiredKeys: [] }) },
      { weight: 1, arbitrary: wild },
    ),
  }).map((fields) => ({ kind: "put" as const, ...fields })),
  {
    weight: 2,
    arbitrary: fc.record({
      write: fc.boolean(),
      lease: fc.nat(7),
      index: fc.nat(2),
      offset: fc.oneof(fc.nat(5000), wild),
      data: fc.oneof(
        { weight: 3, arbitrary: fc.uint8Array({ maxLength: 64 }) },
        { weight: 1, arbitrary: wild },
      ),
    }).map((fields) => ({ kind: "blob" as const, ...fields })),
  },
);

// deno-lint-ignore no-explicit-any
type Loose = any;

/** Runs a call; a rejection must be a Packice error other than INTERNAL. */
async function perform(peer: FuzzedPeer, held: Acquired[], call: Call): Promise<void> {
  const loose = peer as Loose;
  const leaseOf = (ref: Ref) =>
    "value" in ref ? ref.value : held[ref.known % Math.max(held.length, 1)]?.lease.id;
  try {
    switch (call.kind) {
      case "acquire": {
        const { objectId, access, ...options } = call.fields;
        const acquired = await loose.acquire(objectId, access, call.whole ?? options);
        held.push(acquired);
        return;
      }
      case "lease":
        if (call.method === "recordDigest") {
          return await loose.recordDigest(leaseOf(call.lease), "d");
        }
        return await loose[call.method](leaseOf(call.lease));
      case "renew":
        return await loose.renew(leaseOf(call.lease), call.ttl);
      case "object":
        return await loose[call.method](call.id);
      case "put":
        // On a seed's id it is refused: a put never changes a sealed object.
        return void await loose.putObject(call.chunks, call.size, call.options);
      case "blob": {
        const blob = held[call.lease % Math.max(held.length, 1)]?.blobs[call.index];
        if (blob === undefined) return;
        const loose = blob as Loose;
        if (call.write) return await loose.write(call.offset, call.data);
        const length = call.data instanceof Uint8Array ? call.data.length : call.data;
        return void await loose.read(call.offset, length);
      }
    }
  } catch (error) {
    assert(error instanceof PackiceError, `${call.kind}: not a Packice error: ${error}`);
    assert(error.code !== "INTERNAL", `${call.kind}: INTERNAL: ${error.message}`);
  }
}

/**
 * Puts the seeds into `peer`, then gives the property over sequences of calls.
 *
 * @param peer The peer to fuzz.
 * @param sweep Ends leases past their TTL, as a daemon does each second.
 */
export async function peerProperty(
  peer: FuzzedPeer,
  sweep: () => Promise<unknown>,
): Promise<fc.IAsyncPropertyWithHooks<[Call[]]>> {
  const seeds = SEED_IDS.map((_, i) => new Uint8Array(50 * i + 3).fill(i + 1));
  for (const [i, id] of SEED_IDS.entries()) {
    await peer.putObject([seeds[i]!], seeds[i]!.length, { id });
  }
  return fc.asyncProperty(
    fc.array(call, { minLength: 1, maxLength: 12 }),
    async (calls) => {
      const held: Acquired[] = [];
      try {
        for (const call of calls) await perform(peer, held, call);
      } finally {
        for (const { lease } of held) await peer.release(lease.id).catch(() => {});
        await sweep();
      }
      assertEquals((await peer.stats()).leases, 0, "every lease released");
      for (const info of await peer.list()) {
        assertEquals(info.state, "SEALED", `object ${info.id} left unsealed`);
        if (!(SEED_IDS as readonly string[]).includes(info.id)) {
          const { lease } = await peer.acquire(info.id, Access.WRITE);
          await peer.discard(lease.id);
        }
      }
      for (const [i, id] of SEED_IDS.entries()) {
        const { lease, blobs } = await peer.acquire(id, Access.READ);
        try {
          assertEquals(await blobs[0]!.read(0, seeds[i]!.length), seeds[i], `${id} changed`);
        } finally {
          await peer.release(lease.id);
        }
      }
    },
  );
}
