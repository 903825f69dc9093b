import {
  writeThroughTemporary,
  writeThroughTemporarySync,
} from "../../native/write_through_temporary.ts";
import { assertEquals, assertRejects, assertThrows } from "../helpers/assert.ts";

Deno.test("writeThroughTemporary(Sync) leaves the old file and no temporary when the write fails", async () => {
  const dir = await Deno.makeTempDir({ prefix: "packice-temporary-" });
  try {
    const path = `${dir}/file`;
    await Deno.writeTextFile(path, "old");
    await assertRejects(
      () =>
        writeThroughTemporary(path, async (temporary) => {
          await Deno.writeTextFile(temporary, "half");
          throw new Error("cut off");
        }),
      Error,
      "cut off",
    );
    assertThrows(
      () =>
        writeThroughTemporarySync(path, (temporary) => {
          Deno.writeTextFileSync(temporary, "half");
          throw new Error("cut off");
        }),
      Error,
    );
    assertEquals([...Deno.readDirSync(dir)].map((entry) => entry.name), ["file"]);
    assertEquals(await Deno.readTextFile(path), "old");
    writeThroughTemporarySync(path, (temporary) => Deno.writeTextFileSync(temporary, "new"));
    assertEquals(await Deno.readTextFile(path), "new");
    assertEquals([...Deno.readDirSync(dir)].map((entry) => entry.name), ["file"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
