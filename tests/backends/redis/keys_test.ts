import { assertEquals } from "../../helpers/assert.ts";
import { shardOf } from "../../../backends/redis/keys.ts";

Deno.test("shardOf() is FNV-1a of the id's UTF-8 bytes, the same in every version", () => {
  // Daemons of different versions share one namespace: an id's shard never changes.
  const ids = ["object-7", "bench-object", "x-é-y", "日本", "😀"];
  assertEquals(ids.map((id) => shardOf(id, 64)), [38, 43, 20, 17, 8]);
  assertEquals(ids.map((id) => shardOf(id, 1_000_003)), [460260, 274102, 372576, 120711, 290658]);
  assertEquals(ids.map((id) => shardOf(id, 1)), [0, 0, 0, 0, 0]);
});
