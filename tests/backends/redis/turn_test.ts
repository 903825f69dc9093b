import { setImmediate } from "node:timers";
import { assertEquals } from "../../helpers/assert.ts";
import { gatherAtTurnEnd, writeAtTurnEnd } from "../../../backends/redis/turn.ts";

Deno.test("the end of a turn runs what gathers before what writes, in one pass", async () => {
  const ran: string[] = [];
  writeAtTurnEnd(() => ran.push("write 1"));
  gatherAtTurnEnd(() => {
    ran.push("gather 1");
    // Issued while gathering: written in the same pass, not a loop iteration later.
    writeAtTurnEnd(() => ran.push("write 2"));
  });
  gatherAtTurnEnd(() => ran.push("gather 2"));
  const next = new Promise<void>((resolve) => setImmediate(resolve));
  ran.push("turn");
  await next;
  assertEquals(ran, ["turn", "gather 1", "gather 2", "write 1", "write 2"]);
});
