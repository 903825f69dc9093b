/**
 * Generators shared by the fuzz tests: values good and bad for every field
 * of a request, and object ids that never name a seed (see `SEED_IDS`).
 */
import { fc } from "./budget.ts";
import { SEED_IDS } from "./fuzz_daemon.ts";

/** Any JSON value, with the ones validators trip on most often. */
export const wild: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53, 1e300, "", "5", "READ", "CREATE"),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 12 }),
  fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);

/** Ids a case may create, write and delete. */
export const scratchId: fc.Arbitrary<string> = fc.constantFrom("fz-a", "fz-b", "fz-c");

/** Strings that are bad ids, or odd ones. */
export const oddId: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("", ".", "..", "a/b", "a\\b", "%", "%zz", "x".repeat(300), "\uFEFFa", "a\u0000"),
  fc.string({ maxLength: 16 }),
  fc.string({ unit: "binary", maxLength: 8 }),
);

/** Any id but a seed's: for what may change or delete an object. */
export const safeId: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: scratchId },
  { weight: 1, arbitrary: oddId },
);

/** Any id, the seeds' included: for what only reads or creates. */
export const anyId: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...SEED_IDS) },
  { weight: 3, arbitrary: safeId },
);

/** A size field: mostly right, sometimes large, sometimes anything. */
export const size: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.nat(4096) },
  { weight: 1, arbitrary: fc.array(fc.nat(64), { minLength: 0, maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom(1 << 20, 8 << 20, 300 << 20) },
  { weight: 2, arbitrary: wild },
);

/** A TTL field. */
export const ttl: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 60_000 }) },
  { weight: 1, arbitrary: wild },
);

/** A meta field. */
export const meta: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })),
  },
  { weight: 1, arbitrary: wild },
);

/** An access field. */
export const access: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("READ", "CREATE", "WRITE") },
  { weight: 1, arbitrary: wild },
);

/**
 * The fields of an ACQUIRE, some missing, with `idField` naming the object
 * id: a WRITE lease, which may delete its object, is never on a seed.
 */
export function acquireFields(idField: string): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    { objectId: fc.oneof(anyId, wild), access, ttl, size, meta },
    { requiredKeys: ["access"] },
  ).map((fields) => {
    const { objectId, ...rest } = fields;
    const id = fields.access === "WRITE" && (SEED_IDS as readonly unknown[]).includes(objectId)
      ? "fz-a"
      : objectId;
    return "objectId" in fields ? { ...rest, [idField]: id } : rest;
  });
}
