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
const scratchId: fc.Arbitrary<string> = fc.constantFrom("fz-a", "fz-b", "fz-c");

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

/** A TTL field. */
export const ttl: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 60_000 }) },
  { weight: 1, arbitrary: wild },
);

/**
 * Fields that are right, then at most one of them made wrong, dropped, or
 * joined by one the request does not know: a check that misses one field
 * is found this way, where wholly random fields trip an earlier check first.
 */
export function oneWrong(
  right: fc.Arbitrary<Record<string, unknown>>,
  fields: readonly string[],
): fc.Arbitrary<Record<string, unknown>> {
  const change = fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: fc.record({ field: fc.constantFrom(...fields), value: wild }) },
    {
      weight: 1,
      arbitrary: fc.record({ field: fc.constantFrom(...fields), value: fc.constant(undefined) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ field: fc.constantFrom("extra", "memfds", "__proto__"), value: wild }),
    },
  );
  return fc.tuple(right, change).map(([request, change]) => {
    if (change === undefined) return request;
    const changed: Record<string, unknown> = { ...request };
    if (change.value === undefined) delete changed[change.field];
    else Object.defineProperty(changed, change.field, { value: change.value, enumerable: true });
    return changed;
  });
}

/**
 * The fields of an ACQUIRE, with `idField` naming the object id: a WRITE
 * lease, which may delete its object, is never on a seed.
 */
export function acquireFields(idField: string): fc.Arbitrary<Record<string, unknown>> {
  const right = fc.record({
    access: fc.constantFrom("READ", "CREATE", "WRITE"),
    [idField]: anyId,
    ttl: fc.integer({ min: 1, max: 60_000 }),
    size: fc.oneof(
      { weight: 4, arbitrary: fc.nat(4096) },
      { weight: 1, arbitrary: fc.array(fc.nat(64), { minLength: 1, maxLength: 3 }) },
      { weight: 1, arbitrary: fc.constantFrom(1 << 20, 8 << 20, 300 << 20) },
    ),
    meta: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), {
      maxKeys: 3,
    }),
  }, { requiredKeys: ["access", "size"] });
  return oneWrong(right, ["access", idField, "ttl", "size", "meta"]).map((fields) =>
    fields.access === "WRITE" && (SEED_IDS as readonly unknown[]).includes(fields[idField])
      ? { ...fields, [idField]: "fz-a" }
      : fields
  );
}

/** The fields of a PUT besides its bytes. */
export const putFields: fc.Arbitrary<Record<string, unknown>> = oneWrong(
  fc.record({
    id: anyId,
    ttl: fc.integer({ min: 1, max: 60_000 }),
    meta: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), {
      maxKeys: 3,
    }),
  }, { requiredKeys: [] }),
  ["id", "ttl", "meta"],
);
