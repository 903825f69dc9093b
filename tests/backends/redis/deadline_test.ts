import { assertEquals } from "../../helpers/assert.ts";
import { Deadline, LATE } from "../../../backends/redis/deadline.ts";

const after = <T>(ms: number, value: T) =>
  new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

Deno.test("Deadline.within() gives a call's value in time, LATE past the deadline", async () => {
  const deadline = new Deadline(50);
  try {
    const slowCall = after(150, "slow");
    const [quick, slow, failed] = await Promise.allSettled([
      deadline.within(after(5, "quick")),
      deadline.within(slowCall),
      deadline.within(Promise.reject(new Error("refused"))),
    ]);
    assertEquals(quick, { status: "fulfilled", value: "quick" });
    assertEquals(slow, { status: "fulfilled", value: LATE });
    assertEquals(failed.status === "rejected" && (failed.reason as Error).message, "refused");
    // Calls started later get deadlines of their own, after earlier ones settled.
    await slowCall;
    const lateCall = after(80, "late again");
    assertEquals(await deadline.within(lateCall), LATE);
    assertEquals(await deadline.within(after(1, "fine")), "fine");
    assertEquals(await lateCall, "late again");
  } finally {
    deadline.close();
  }
});
