import {
  ErrorCode,
  errorFromCode,
  InternalError,
  PackiceError,
  validateMeta,
  validateObjectId,
} from "../../mod.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { InvalidArgumentError } from "../../mod.ts";

Deno.test("errorFromCode() rebuilds the class of every code", () => {
  for (const code of Object.values(ErrorCode)) {
    const error = errorFromCode(code, `message of ${code}`);
    assert(error instanceof PackiceError);
    assertEquals([error.code, error.message], [code, `message of ${code}`]);
    assertEquals(error.name, error.constructor.name);
    assertEquals(error.toJSON(), { code, message: `message of ${code}` });
  }
  assert(errorFromCode("NO_SUCH_CODE", "x") instanceof InternalError);
});

Deno.test("validateObjectId() accepts ordinary ids and refuses unsafe ones", () => {
  for (const id of ["a", "model.bin", "weights-v1:shard_3", "ü".repeat(125), "x".repeat(250)]) {
    assertEquals(validateObjectId(id), id);
  }
  for (
    const id of ["", ".", "..", "a/b", "a\\b", "\u0000", "tab\t", "x".repeat(251), "ü".repeat(126)]
  ) {
    assertThrows(() => validateObjectId(id), InvalidArgumentError);
  }
  assertThrows(() => validateObjectId(42), InvalidArgumentError);
});

Deno.test("validateMeta() takes plain JSON objects within the size limit", () => {
  assertEquals(validateMeta({ a: 1, b: [true, null, "x"], c: { d: 2 } }), {
    a: 1,
    b: [true, null, "x"],
    c: { d: 2 },
  });
  assertEquals(validateMeta(undefined), {});
  for (const meta of [null, [], 3, "s", new Map(), { big: "x".repeat(70_000) }]) {
    assertThrows(() => validateMeta(meta), InvalidArgumentError);
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assertThrows(() => validateMeta(cyclic), InvalidArgumentError);
});
