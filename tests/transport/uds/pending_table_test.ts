/** The requests of a client connection under way, by id: found whichever slot they took. */
import { assertEquals } from "../../helpers/assert.ts";
import { PendingTable } from "../../../transport/uds/pending_table.ts";

Deno.test("PendingTable holds requests by id, in the ring or, when a slot is taken, aside", () => {
  const table = new PendingTable<string>();
  table.set(1, "a");
  // 257 falls on the slot of 1, still taken: it is held aside.
  table.set(257, "b");
  table.set(2, "c");
  assertEquals(table.size, 3);
  assertEquals([table.get(1), table.get(257), table.get(2), table.get(513)], [
    "a",
    "b",
    "c",
    undefined,
  ]);
  assertEquals(table.delete(1), true);
  assertEquals(table.delete(1), false);
  assertEquals(table.get(257), "b");
  assertEquals(table.get(1), undefined);
  table.set(513, "d");
  assertEquals([...table.entries()].sort(), [[2, "c"], [257, "b"], [513, "d"]]);
  table.clear();
  assertEquals([table.size, table.get(2), table.get(257), [...table.entries()]], [
    0,
    undefined,
    undefined,
    [],
  ]);
});

Deno.test("PendingTable.forEach() visits every value once, in slots and beyond, and may delete", () => {
  const table = new PendingTable<string>();
  for (const [id, value] of [[1, "a"], [257, "b"], [2, "c"], [513, "d"]] as const) {
    table.set(id, value);
  }
  const seen: [number, string][] = [];
  table.forEach((value, id) => {
    seen.push([id, value]);
    table.delete(id);
  });
  assertEquals(seen.sort(), [[1, "a"], [2, "c"], [257, "b"], [513, "d"]]);
  assertEquals([table.size, [...table.entries()]], [0, []]);
});
