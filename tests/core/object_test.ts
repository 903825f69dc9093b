import { assertEquals } from "../helpers/assert.ts";
import { type ObjectInfo, sameContent } from "../../core/mod.ts";

const base: ObjectInfo = {
  id: "x",
  state: "SEALED",
  size: 15,
  blobSizes: [10, 5],
  meta: {},
  createdAt: 1,
};

Deno.test("sameContent() tells bytes apart by size, blob sizes and digest", () => {
  assertEquals(sameContent(base, { ...base, meta: { other: "meta" }, createdAt: 2 }), true);
  assertEquals(sameContent(base, { ...base, size: 14, blobSizes: [10, 4] }), false);
  assertEquals(sameContent(base, { ...base, blobSizes: [5, 10] }), false);
  assertEquals(sameContent(base, { ...base, blobSizes: [15] }), false);
  const a = { ...base, digest: "xxh64:0000000000000001" };
  assertEquals(sameContent(a, { ...base, digest: "xxh64:0000000000000001" }), true);
  assertEquals(sameContent(a, { ...base, digest: "xxh64:0000000000000002" }), false);
  // A digest missing on one side, or of another algorithm, cannot tell them apart.
  assertEquals(sameContent(a, base), true);
  assertEquals(sameContent(a, { ...base, digest: "sha256:00" }), true);
});
